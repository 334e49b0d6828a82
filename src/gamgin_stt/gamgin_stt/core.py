"""Listening, segmentation and transcription of one 16 kHz microphone stream. No ROS.

``Transcriber.feed`` takes mic audio as it comes and returns the transcripts to publish:
partials (``is_final`` false) every ``partial_interval_s`` of speech, then one final at
end of speech. Latency design: when ``post_roll`` of silence has passed the utterance is
transcribed at once (speculatively) while the VAD hang-over still runs; if no speech
comes back, that result *is* the final, so little work remains after end of speech.

Turns: in ``wake`` mode a WakeEvent opens a listen window carrying its ``turn_id``
(closed by the final, by ``listen_timeout_s`` without speech, or by cancellation). In
``always_on`` mode every utterance gets the next turn id above any id seen on ``wake`` /
``turn/state`` (and at least ``turn_id_start``), so it supersedes older turns.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gamgin_common.stamps import clock_turn_id
from gamgin_stt.backends import Recognition, Recognizer, RecognizerUnavailable
from gamgin_stt.segmenter import Event, SpeechSegmenter, VadConfig, frames
from gamgin_stt.text import is_address_only, join_parts
from gamgin_stt.vad import FRAME, SAMPLE_RATE

MODES = ("wake", "always_on")
Log = Callable[[str, str], None]  # (level: "info"|"warn"|"error", message)


@dataclass
class SttConfig:
    mode: str = "wake"
    listen_timeout_s: float = 6.0  # wake mode: close the window if nobody starts speaking
    history_s: float = 3.0  # audio kept before a wake, to catch speech right after the word
    partial_interval_s: float = 0.6  # audio between partial transcripts; 0 = no partials
    partial_max_backlog_s: float = 0.3  # skip a partial when this far behind real time
    speculative_final: bool = True
    min_confidence: float = 0.2  # exp(avg token log-prob) below this is discarded
    no_speech_threshold: float = 0.6  # with a log-prob under logprob_threshold: discard
    logprob_threshold: float = -1.0
    turn_id_start: int = 1  # always_on: first own turn id
    # always_on: own turn ids at least the clock's (stamps.clock_turn_id, the wake node's
    # scheme), so they are newer than the turns of a graph this STT did not hear: a
    # restart, or a brain host whose link to the robot was down
    turn_ids_from_clock: bool = False
    # A speculative final that is a complete command (the `complete` predicate, e.g. a
    # device intent that matches in full) ends the turn after this much silence instead
    # of the whole hang-over; 0 = off. Never shorter than post_roll (the speculation).
    early_end_ms: float = 160.0
    # A final that is only the robot's name ("金坚。" said with a pause before the rest,
    # "金坚……你好") is held: the turn keeps listening this long for what follows, and the
    # final is name + continuation (or the name alone if nothing comes). () = off.
    address_names: tuple[str, ...] = ()
    address_wait_s: float = 3.0

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode {self.mode!r} must be one of {MODES}")
        if self.listen_timeout_s <= 0:
            raise ValueError("listen_timeout_s must be > 0")
        if not 0.0 <= self.min_confidence < 1.0:
            raise ValueError("min_confidence must be in [0, 1)")
        if self.early_end_ms < 0:
            raise ValueError("early_end_ms must be >= 0 (0 = off)")
        if self.address_wait_s < 0:
            raise ValueError("address_wait_s must be >= 0")


@dataclass
class TranscriptEvent:
    turn_id: int
    text: str
    language: str
    confidence: float
    is_final: bool
    speech_start_ns: int
    speech_end_ns: int  # 0 on partials
    decided_ns: int  # finals: arrival time of the audio that ended the utterance
    compute_s: float  # recognizer time spent on this transcript after end of speech


class SampleBuffer:
    """Samples addressed by absolute stream index; old ones can be dropped."""

    def __init__(self) -> None:
        self._data = np.zeros(SAMPLE_RATE * 4, dtype=np.float32)
        self.start = 0  # absolute index of _data[0]
        self.end = 0  # absolute index one past the last sample

    def append(self, samples: np.ndarray) -> None:
        used = self.end - self.start
        if used + len(samples) > len(self._data):
            grown = np.zeros(max(2 * len(self._data), used + len(samples)), dtype=np.float32)
            grown[:used] = self._data[:used]
            self._data = grown
        self._data[used: used + len(samples)] = samples
        self.end += len(samples)

    def slice(self, a: int, b: int) -> np.ndarray:
        a, b = max(a, self.start), min(b, self.end)
        if b <= a:
            return np.zeros(0, np.float32)
        return self._data[a - self.start: b - self.start].copy()

    def trim(self, keep_from: int) -> None:
        drop = min(keep_from, self.end) - self.start
        if drop < SAMPLE_RATE:  # compact at most once a second of audio
            return
        used = self.end - self.start
        self._data[: used - drop] = self._data[drop:used]
        self.start += drop


class Transcriber:
    def __init__(self, recognizer: Recognizer, vad: Callable[[np.ndarray], float],
                 cfg: SttConfig, vad_cfg: VadConfig, log: Log | None = None,
                 complete: Callable[[str, str], bool] | None = None) -> None:
        cfg.validate()
        self.rec, self.vad, self.cfg = recognizer, vad, cfg
        self.seg = SpeechSegmenter(vad_cfg)
        self.complete = complete  # may be attached later (the node loads it in the background)
        # frames of silence that end a complete command; 0 = off (also when it would not
        # come before the hang-over anyway)
        early = max(frames(cfg.early_end_ms), self.seg.post_roll_frames)
        self._early_frames = (early if 0 < cfg.early_end_ms and early < frames(
            vad_cfg.hang_over_ms) else 0)
        self._log = log or _default_log
        self.stats: Counter = Counter()
        self.last_error = ""
        self.last_final: TranscriptEvent | None = None
        self._buf = SampleBuffer()
        self._anchors: deque[tuple[int, int]] = deque()  # (sample index, stamp ns)
        self._received_ns = 0
        self._backlog_s = 0.0
        self.turn: int | None = None  # turn of the open window / current utterance
        self._pending_turn: int | None = None  # always_on: a wake's turn for the next utterance
        self.listening = cfg.mode == "always_on"
        self._max_seen = cfg.turn_id_start - 1
        self._cancelled_upto = 0
        # the name said alone, waiting for the rest: (parts, speech start, speech end,
        # deadline) as stream indices
        self._held: tuple[list[Recognition], int, int, int] | None = None
        self._open_vad(0)

    # ------------------------------------------------------------------ control
    def open_window(self, turn_id: int, start_ns: int) -> None:
        """A wake word for ``turn_id`` ended at ``start_ns``: listen from there."""
        if turn_id <= self._cancelled_upto or (self.turn is not None and turn_id < self.turn):
            self._log("info", f"wake for turn {turn_id} ignored: cancelled or older than "
                              f"turn {self.turn}")
            return
        self._max_seen = max(self._max_seen, turn_id)
        if self.cfg.mode == "always_on":
            if self.seg.in_speech:
                self.turn = turn_id
            else:
                self._pending_turn = turn_id
            return
        if self.seg.in_speech and self.turn is not None:
            self._log("info", f"turn {self.turn} superseded by wake {turn_id}: speech dropped")
            self.stats["superseded"] += 1
        start = self._index_at(start_ns) if start_ns else self._buf.end
        self._held = None
        self.turn, self.listening = turn_id, True
        self._open_vad(max(self._buf.start, min(start, self._buf.end)))
        back_s = (self._buf.end - self._vad_pos) / SAMPLE_RATE
        self._log("info", f"turn {turn_id}: listening (from {back_s:.2f} s ago)")

    def cancel(self, turn_id: int) -> None:
        """TurnState CANCELLED for ``turn_id``: stop work on every turn <= it."""
        self._cancelled_upto = max(self._cancelled_upto, turn_id)
        self._max_seen = max(self._max_seen, turn_id)
        if self._pending_turn is not None and self._pending_turn <= turn_id:
            self._pending_turn = None
        if self.turn is not None and self.turn <= turn_id:
            self._drop(f"turn {self.turn} cancelled")

    def note_turn(self, turn_id: int) -> None:
        """A newer turn exists elsewhere (turn/state): it supersedes the one we listen for."""
        if turn_id <= self._max_seen:
            return
        self._max_seen = turn_id
        if self.turn is None or self.turn >= turn_id:
            return
        if self.cfg.mode == "always_on" and self.seg.in_speech:
            self.turn = self._next_turn()  # the user is still talking: keep it, renumber
        else:
            self._drop(f"turn {self.turn} superseded by turn {turn_id}")

    def _drop(self, why: str) -> None:
        if self.seg.in_speech:
            why += f"; {(self._vad_pos - self._seg_start) / SAMPLE_RATE:.1f} s of speech dropped"
        self._log("info", why)
        self.stats["dropped_turns"] += 1
        self._held = None
        self.turn = None
        self.listening = self.cfg.mode == "always_on"
        self._open_vad(self._buf.end)

    def _next_turn(self) -> int:
        clock = clock_turn_id() if self.cfg.turn_ids_from_clock else 0
        self._max_seen = max(self._max_seen + 1, self.cfg.turn_id_start, clock)
        return self._max_seen

    def _open_vad(self, pos: int) -> None:
        self.vad_reset()
        self.seg.reset()
        self._origin = self._vad_pos = self._window_start = pos
        self._seg_start = pos  # first sample of the current part's audio
        self._speech_start_n = pos
        self._parts: list[Recognition] = []
        self._spec: tuple[int, Recognition | None] | None = None
        self._spec_complete = False  # the speculation is a complete command: end early
        self._lang: str | None = None
        self._last_partial_n = pos
        self._last_partial_text = ""
        self._unavailable = False  # the last final decode found the recognizer away

    def vad_reset(self) -> None:
        reset = getattr(self.vad, "reset", None)
        if reset is not None:
            reset()

    # ------------------------------------------------------------------ audio
    def feed(self, samples: np.ndarray, stamp_ns: int, received_ns: int = 0,
             backlog_s: float = 0.0) -> list[TranscriptEvent]:
        """16 kHz mono float32 whose first sample was captured at ``stamp_ns``."""
        self._anchors.append((self._buf.end, stamp_ns))
        self._buf.append(samples)
        self._received_ns, self._backlog_s = received_ns, backlog_s
        out: list[TranscriptEvent] = []
        while self.listening and self._vad_pos + FRAME <= self._buf.end:
            prob = self.vad(self._buf.slice(self._vad_pos, self._vad_pos + FRAME))
            self._vad_pos += FRAME
            self._on_event(self.seg.push(prob), out)
            if (self._spec_complete and self.seg.in_speech and self.seg.paused
                    and self.seg.silent_frames >= self._early_frames):
                self.seg.end_now()
                self.stats["early_ends"] += 1
                self._finish(out)
        self._trim()
        return out

    def _on_event(self, ev: Event | None, out: list[TranscriptEvent]) -> None:
        seg = self.seg
        if ev is Event.START:
            if self.cfg.mode == "always_on" and self._held is None:
                self.turn = self._pending_turn or self._next_turn()
                self._pending_turn = None
            self._speech_start_n = self._frame_index(seg.start_frame)
            if self._held is not None:  # the rest after the name: one utterance with it
                self._parts = list(self._held[0])
                self._speech_start_n = self._held[1]
                self._held = None
            pre = self._frame_index(seg.start_frame - seg.pre_roll_frames)
            self._seg_start = max(pre, self._window_start, self._buf.start)
            self._last_partial_n = self._vad_pos
            self._log("info", f"turn {self.turn}: speech started")
        elif ev is Event.PAUSE and self.cfg.speculative_final:
            self._spec = (self._vad_pos, self._recognize(self._seg_start, self._vad_pos, True))
            self._spec_complete = self._is_complete(self._spec[1])
        elif ev is Event.RESUME:
            self._spec, self._spec_complete = None, False
        elif ev is Event.END:
            self._finish(out)
            return
        elif ev is Event.CUT:
            self._cut(out)
            return
        if not seg.in_speech:
            if self._held is not None and self._vad_pos >= self._held[3]:
                parts, start, end, _ = self._held
                self._held = None
                self._log("info", f"turn {self.turn}: nothing followed the name")
                self._emit_final(parts, start, end, 0.0, out)
                return
            if self.cfg.mode == "wake" and self._vad_pos - self._window_start >= (
                    self.cfg.listen_timeout_s * SAMPLE_RATE):
                self._log("info", f"turn {self.turn}: no speech within "
                                  f"{self.cfg.listen_timeout_s:.1f} s; window closed")
                self.stats["timeouts"] += 1
                self.turn, self.listening = None, False
            return
        interval = self.cfg.partial_interval_s * SAMPLE_RATE
        # Not in a silence run: the utterance may be ending, and a partial started now
        # would delay the speculative final, which is what the user waits for.
        if (interval > 0 and seg.silent_frames == 0
                and self._vad_pos - self._last_partial_n >= interval):
            self._last_partial_n = self._vad_pos
            if self._backlog_s > self.cfg.partial_max_backlog_s:
                self.stats["partials_skipped"] += 1  # catching up matters more
                return
            self._partial(out)

    def _partial(self, out: list[TranscriptEvent]) -> None:
        rec = self._recognize(self._seg_start, self._vad_pos, False)
        if rec is None or not self._acceptable(rec, quiet=True):
            return
        self._lang = self._lang or rec.language
        text = join_parts([p.text for p in self._parts] + [rec.text])
        if text == self._last_partial_text:
            return
        self._last_partial_text = text
        self.stats["partials"] += 1
        out.append(self._event(text, rec.language, rec.confidence, False, 0, rec.compute_s))

    def _cut(self, out: list[TranscriptEvent]) -> None:
        cut = self._frame_index(self.seg.cut_point())
        rec = self._recognize(self._seg_start, cut, True)
        self._log("info", f"turn {self.turn}: utterance reached "
                          f"{self.seg.cfg.max_utterance_s:.0f} s; transcribing it in parts")
        self.stats["cuts"] += 1
        if rec is not None and self._acceptable(rec):
            self._parts.append(rec)
        self._seg_start = cut
        self.seg.start_part((cut - self._origin) // FRAME)
        self._spec = None
        if self._parts:
            last = self._parts[-1]
            text = join_parts([p.text for p in self._parts])
            self._last_partial_text = text
            out.append(self._event(text, last.language, last.confidence, False, 0, 0.0))

    def _is_complete(self, rec: Recognition | None) -> bool:
        if self.complete is None or not self._early_frames or rec is None or self._parts:
            return False
        if not self._acceptable(rec, quiet=True):
            return False
        try:
            return bool(self.complete(rec.text, rec.language))
        except Exception as exc:  # a broken plug-in must not stop listening
            self._log("warn", f"complete-utterance check failed: {exc}; hang-over used")
            self.complete = None
            return False

    def _finish(self, out: list[TranscriptEvent]) -> None:
        end = self._frame_index(self.seg.last_voiced + 1 + self.seg.post_roll_frames)
        spec, self._spec, self._spec_complete = self._spec, None, False
        compute = 0.0
        if spec is not None and spec[0] == end:
            rec = spec[1]
            self.stats["speculation_hits"] += 1
        else:
            rec = self._recognize(self._seg_start, end, True)
            compute = rec.compute_s if rec is not None else 0.0
            self.stats["speculation_misses"] += 1
        parts = self._parts + ([rec] if rec is not None and self._acceptable(rec) else [])
        if not parts and self._unavailable:
            # nobody could transcribe it (a remote service away, no fallback): an empty
            # final, so the dialogue says it did not catch that instead of silence
            self.stats["unavailable_finals"] += 1
            lang = (self._lang or getattr(self.rec, "prior_language", "")
                    or getattr(getattr(self.rec, "cfg", None), "home_language", "") or "zh")
            self._emit_final([Recognition("", lang, 0.0, 0.0, 0.0)], self._speech_start_n, end,
                             compute, out)
            return
        if not parts:
            self.stats["discarded"] += 1
            self._reopen_after_discard()
            return
        if (self.cfg.address_names and self.cfg.address_wait_s > 0 and len(parts) == 1
                and is_address_only(parts[0].text, self.cfg.address_names)):
            # only the name so far: keep the turn and listen for the rest
            start = self._speech_start_n
            self._open_vad(self._vad_pos)
            self._held = (parts, start, end,
                          self._vad_pos + int(self.cfg.address_wait_s * SAMPLE_RATE))
            self.stats["address_holds"] += 1
            self._log("info", f"turn {self.turn}: heard only {parts[0].text!r}; listening "
                              f"{self.cfg.address_wait_s:.1f} s for the rest")
            return
        self._emit_final(parts, self._speech_start_n, end, compute, out)

    def _emit_final(self, parts: list[Recognition], start_n: int, end: int, compute: float,
                    out: list[TranscriptEvent]) -> None:
        turn = self.turn
        self._speech_start_n = start_n
        text = join_parts([p.text for p in parts])
        dur = [max(1, len(p.text)) for p in parts]
        conf = float(np.average([p.confidence for p in parts], weights=dur))
        ev = self._event(text, parts[-1].language, conf, True, self._time_ns(end), compute)
        self.stats["finals"] += 1
        self.last_final = ev
        if hasattr(self.rec, "prior_language"):
            self.rec.prior_language = ev.language  # a prior for the next turn's detection
        out.append(ev)
        self._log("info", f"turn {turn}: final {text!r} (confidence {conf:.2f}, "
                          f"{(end - start_n) / SAMPLE_RATE:.2f} s of speech)")
        if self.cfg.mode == "wake":
            self.turn, self.listening = None, False
        else:
            self.turn = None
        self._open_vad(self._vad_pos)

    def _reopen_after_discard(self) -> None:
        # Noise is not an answer: keep the window open for what remains of its time.
        keep_window = self._window_start
        self._open_vad(self._vad_pos)
        if self.cfg.mode == "wake":
            self._window_start = keep_window
        else:
            self.turn = None

    # ------------------------------------------------------------------ helpers
    def _recognize(self, a: int, b: int, final: bool) -> Recognition | None:
        audio = self._buf.slice(a, b)
        if len(audio) < FRAME:
            return None
        try:
            rec = self.rec.recognize(audio, final, language=None if final else self._lang)
        except Exception as exc:
            self.last_error = f"decode of {len(audio) / SAMPLE_RATE:.1f} s failed: {exc}"
            self._log("error", f"turn {self.turn}: {self.last_error} (audio dropped, listening on)")
            self.stats["decode_failures"] += 1
            self._unavailable = final and isinstance(exc, RecognizerUnavailable)
            return None
        self._unavailable = False
        self.last_error = ""
        self.stats["decodes"] += 1
        self.stats["decode_ms_total"] += int(rec.compute_s * 1000)
        return rec

    def _acceptable(self, rec: Recognition, quiet: bool = False) -> bool:
        why = ""
        if not rec.text:
            why = "empty text"
        elif rec.confidence < self.cfg.min_confidence:
            why = f"confidence {rec.confidence:.2f} < {self.cfg.min_confidence:.2f}"
        elif (rec.no_speech_prob > self.cfg.no_speech_threshold
              and rec.avg_logprob < self.cfg.logprob_threshold):
            why = f"no-speech probability {rec.no_speech_prob:.2f}"
        if why and not quiet:
            self._log("info", f"turn {self.turn}: discarded {rec.text!r} ({why})")
        return not why

    def _event(self, text: str, lang: str, conf: float, final: bool, end_ns: int,
               compute_s: float) -> TranscriptEvent:
        return TranscriptEvent(
            turn_id=self.turn or 0, text=text, language=lang, confidence=conf, is_final=final,
            speech_start_ns=self._time_ns(self._speech_start_n), speech_end_ns=end_ns,
            decided_ns=self._received_ns if final else 0, compute_s=compute_s,
        )

    def _frame_index(self, frame: int) -> int:
        return self._origin + frame * FRAME

    def _time_ns(self, index: int) -> int:
        stamp_at, stamp = self._anchors[0] if self._anchors else (0, 0)
        for a_index, a_stamp in reversed(self._anchors):
            if a_index <= index:
                stamp_at, stamp = a_index, a_stamp
                break
        return stamp + (index - stamp_at) * 1_000_000_000 // SAMPLE_RATE

    def _index_at(self, t_ns: int) -> int:
        for a_index, a_stamp in reversed(self._anchors):
            if a_stamp <= t_ns:
                return a_index + (t_ns - a_stamp) * SAMPLE_RATE // 1_000_000_000
        return self._buf.start

    def _trim(self) -> None:
        keep = self._buf.end - int(self.cfg.history_s * SAMPLE_RATE)
        if self.listening:
            keep = min(keep, self._vad_pos - self.seg.pre_roll_frames * FRAME)
        if self.seg.in_speech:
            keep = min(keep, self._seg_start)
        self._buf.trim(keep)
        while len(self._anchors) > 1 and self._anchors[1][0] <= self._buf.start:
            self._anchors.popleft()


def _default_log(level: str, message: str) -> None:
    logging.getLogger("gamgin_stt").log(
        {"info": logging.INFO, "warn": logging.WARNING}.get(level, logging.ERROR), message
    )
