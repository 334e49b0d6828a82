"""Token stream -> speech stream, pipelined and cancellable. Pure Python, no ROS.

``SpeechStreamer.tokens`` is called from the ROS callback with each TokenChunk; it cuts
sentences with the SentenceChunker at once and queues them. One worker thread
synthesizes the queued segments in order, publishing audio blocks as the engine yields
them, so the second sentence is synthesized while the first is played and while the
LLM is still writing the third. ``cancel`` kills the running synthesis and ends the
stream with an ``end_of_stream`` chunk right away.

Stream contract (AudioChunk): per turn, ``seq`` 0, 1, ... without gaps; exactly one
``end_of_stream`` chunk, last; the first chunk of each segment carries that segment's
exact text, so the chunk texts of a turn reassemble the answer (texts of segments with
nothing speakable ride on the next chunk).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from gamgin_tts.backends import Engine, EngineUnavailable
from gamgin_tts.chunker import Segment, SentenceChunker
from gamgin_tts.normalize import split_languages


@dataclass
class SpeechChunk:
    turn_id: int
    seq: int
    samples: np.ndarray  # float32 mono in [-1, 1]; empty only on end_of_stream
    sample_rate: int
    end_of_stream: bool
    text: str  # exact answer text that starts in this chunk ('' for the rest)
    reason: str = ""  # on end_of_stream: "done", "cancelled", "superseded"


@dataclass
class TurnStats:
    """Timings of one turn (monotonic seconds), for health and benchmarks."""

    first_token: float
    first_audio: float | None = None
    segments: int = 0
    audio_s: float = 0.0
    synth_s: float = 0.0
    # per segment: (time the segment was cut from the token stream, time of its first audio)
    segment_latency: list[tuple[float, float]] = field(default_factory=list)


class SpeechStreamer:
    def __init__(self, engine: Engine, on_chunk: Callable[[SpeechChunk], None],
                 fallback: Engine | None = None, limits: dict[str, int] | None = None,
                 first_min_chars: int = 4, chunk_ms: int = 200, max_lead_s: float = 0.0,
                 on_error: Callable[[str], None] | None = None,
                 on_turn_done: Callable[[int, TurnStats], None] | None = None,
                 last_resort: Engine | None = None) -> None:
        self.engine, self.fallback = engine, fallback
        # speaks a run whose engine is unavailable mid-answer (a remote service gone) when
        # the fallback is that same engine or lacks the language (espeak, in the node)
        self.last_resort = last_resort
        self.on_chunk = on_chunk
        self.on_error = on_error or (lambda msg: None)
        self.on_turn_done = on_turn_done or (lambda turn, stats: None)
        self.limits = dict(limits or engine.limits)
        self.first_min_chars = first_min_chars
        self.chunk_ms = chunk_ms
        # Audio is published at most this far ahead of real time (0: as fast as synthesized),
        # so a cancelled answer has not been synthesized for nothing and the speaker's queue
        # stays short; the next segment is still ready before the current one ends.
        self.max_lead_s = max_lead_s
        self.sample_rate = engine.sample_rate
        self.counters: dict[str, int] = {}
        self._lock = threading.Lock()
        self._jobs: queue.Queue[tuple] = queue.Queue()
        self._turn = 0  # newest turn seen
        self._chunker: SentenceChunker | None = None
        self._finished: set[int] = set()  # turns whose final token was seen
        self._cancelled_upto = 0
        self._active_turn = 0  # turn the worker is synthesizing now (0: idle)
        self._active_engine: Engine | None = None
        self._closed = False
        self.stats: dict[int, TurnStats] = {}
        self._worker = threading.Thread(target=self._run, name="tts-worker", daemon=True)
        self._worker.start()

    # ------------------------------------------------------------------ producer side
    def tokens(self, turn_id: int, text: str, is_final: bool = False,
               finish_reason: str = "") -> None:
        """One TokenChunk. Older or cancelled turns are ignored; a newer turn supersedes."""
        now = time.monotonic()
        with self._lock:
            if turn_id <= self._cancelled_upto or turn_id < self._turn:
                self._count("stale_tokens")
                return
            if turn_id in self._finished:
                self._count("tokens_after_final")
                return
            if turn_id > self._turn or self._chunker is None:
                if self._turn:
                    self._cancel_locked(turn_id - 1, "superseded")
                self._turn = turn_id
                self._chunker = SentenceChunker(self.limits, self.first_min_chars)
                self.stats[turn_id] = TurnStats(first_token=now)
                for old in [t for t in self.stats if t < turn_id - 8]:
                    del self.stats[old]
                self._jobs.put(("open", turn_id))
            if finish_reason == "cancelled":
                self._cancel_locked(turn_id, "cancelled")
                return
            segments = self._chunker.feed(text)
            if is_final:
                segments += self._chunker.flush()
                self._finished.add(turn_id)
                self._finished = {t for t in self._finished if t > turn_id - 8}
            for seg in segments:
                self._jobs.put(("segment", turn_id, seg, now))
            if is_final:
                self._jobs.put(("end", turn_id))

    def speak(self, turn_id: int, text: str) -> None:
        """A whole text as one stream (``gamgin say``, benchmarks)."""
        self.tokens(turn_id, text, is_final=True, finish_reason="stop")

    def cancel(self, turn_id: int, reason: str = "cancelled") -> None:
        """Stop turn_id and every older turn now; their streams end with end_of_stream."""
        with self._lock:
            self._cancel_locked(turn_id, reason)

    def _cancel_locked(self, turn_id: int, reason: str) -> None:
        if turn_id <= self._cancelled_upto:
            return
        self._cancelled_upto = turn_id
        if self._turn <= turn_id:
            self._chunker = None
        if self._active_turn and self._active_turn <= turn_id and self._active_engine:
            self._active_engine.interrupt()
        self._jobs.put(("cancel", turn_id, reason))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._active_engine:
                self._active_engine.interrupt()
        self._jobs.put(("close",))
        self._worker.join(5)

    def idle(self) -> bool:
        """Nothing queued or being synthesized (for tests and benchmarks)."""
        return self._jobs.unfinished_tasks == 0

    def _count(self, key: str, n: int = 1) -> None:
        self.counters[key] = self.counters.get(key, 0) + n

    # ------------------------------------------------------------------ worker side
    def _run(self) -> None:
        open_turns: dict[int, _Stream] = {}
        while True:
            job = self._jobs.get()
            try:
                kind = job[0]
                if kind == "close":
                    return
                if kind == "open":
                    # even when already cancelled: the "cancel" job queued after this one
                    # then ends the stream, so every turn that got tokens gets its end
                    open_turns[job[1]] = _Stream(job[1])
                elif kind == "segment":
                    _, turn, seg, t_cut = job
                    stream = open_turns.get(turn)
                    if stream is not None and turn > self._cancelled_upto:
                        self._synthesize(stream, seg, t_cut)
                elif kind == "end":
                    stream = open_turns.pop(job[1], None)
                    if stream is not None:
                        self._end(stream, "done")
                elif kind == "cancel":
                    for turn in sorted(t for t in open_turns if t <= job[1]):
                        self._end(open_turns.pop(turn), job[2])
            except Exception as exc:  # the worker must survive any one job
                self._count("worker_errors")
                self.on_error(f"TTS worker: {type(exc).__name__}: {exc}")
            finally:
                self._jobs.task_done()

    def _cancelled(self, turn: int) -> bool:
        return turn <= self._cancelled_upto or self._closed

    def _synthesize(self, stream: _Stream, seg: Segment, t_cut: float) -> None:
        stream.pending_text += seg.raw
        runs = split_languages(seg.text)
        if not runs:
            self._count("unspeakable_segments")
            return
        stats = self.stats.get(stream.turn)
        block = max(1, self.sample_rate * self.chunk_ms // 1000)
        buf: list[np.ndarray] = []
        buffered = 0
        first_audio = None
        t0, paced0 = time.monotonic(), stream.paced_s
        for run in runs:
            engine = self.engine if run.lang in self.engine.languages else self.fallback
            try:
                buf, buffered, first_audio = self._speak_run(
                    stream, run, engine, buf, buffered, block, first_audio)
            except EngineUnavailable as exc:
                # a remote engine gone mid-answer: the fallback says this run rather than
                # the answer going silent (the engine itself fails fast while it is away)
                fb = next((e for e in (self.fallback, self.last_resort) if e is not None
                           and e is not engine and run.lang in e.languages), None)
                if fb is None:
                    self._count("synthesis_errors")
                    self.on_error(f"{engine.name} failed on {run.text[:40]!r}: {exc}")
                    continue
                self._count("engine_fallbacks")
                self.on_error(f"{engine.name} failed ({exc}); {fb.name} speaks instead")
                buf, buffered, first_audio = self._speak_run(
                    stream, run, fb, buf, buffered, block, first_audio)
            if buf is None:
                return
        if buffered and not self._cancelled(stream.turn):
            self._emit(stream, np.concatenate(buf))
            first_audio = first_audio or time.monotonic()
        if stats is not None:
            stats.segments += 1
            stats.synth_s += time.monotonic() - t0 - (stream.paced_s - paced0)
            if first_audio is not None:
                stats.first_audio = stats.first_audio or first_audio
                stats.segment_latency.append((t_cut, first_audio))

    def _speak_run(self, stream: _Stream, run, engine: Engine | None, buf: list[np.ndarray],
                   buffered: int, block: int, first_audio: float | None):
        """One language run through ``engine``, emitting whole blocks. Returns the new
        (buf, buffered, first_audio), buf None when the turn was cancelled. Re-raises
        EngineUnavailable only when the engine failed before any audio of the run (the
        caller then gives the run to the fallback); other failures skip the run."""
        if engine is None:
            self._count("unsupported_language_runs")
            self.on_error(f"engine {self.engine.name} cannot speak {run.lang}: "
                          f"{run.text[:30]!r} skipped (no fallback engine)")
            return buf, buffered, first_audio
        resampler = None
        if engine.sample_rate != self.sample_rate:
            from gamgin_common.audio import Resampler

            resampler = Resampler(engine.sample_rate, self.sample_rate)
        with self._lock:
            if self._cancelled(stream.turn):
                return None, 0, first_audio
            self._active_turn, self._active_engine = stream.turn, engine
        produced = False
        try:
            for samples in engine.synthesize(run.text, run.lang):
                if self._cancelled(stream.turn):
                    return None, 0, first_audio
                produced = True
                if resampler is not None:
                    samples = resampler(samples)
                buf.append(samples)
                buffered += len(samples)
                # whole chunk_ms blocks only, even the first: a tiny first chunk gains
                # ~nothing with engines faster than real time and can underrun the speaker
                while buffered >= block:
                    joined = np.concatenate(buf)
                    n = min(block, len(joined))
                    self._emit(stream, joined[:n])
                    first_audio = first_audio or time.monotonic()
                    buf, buffered = [joined[n:]], len(joined) - n
            if resampler is not None:
                tail = resampler(np.zeros(0, np.float32), last=True)
                buf.append(tail)
                buffered += len(tail)
        except Exception as exc:  # one bad segment must not end the turn
            if self._cancelled(stream.turn):
                return None, 0, first_audio
            if isinstance(exc, EngineUnavailable) and not produced:
                raise
            self._count("synthesis_errors")
            self.on_error(f"{engine.name} failed on {run.text[:40]!r}: {exc}")
        finally:
            with self._lock:
                self._active_turn, self._active_engine = 0, None
        return buf, buffered, first_audio

    def _emit(self, stream: _Stream, samples: np.ndarray) -> None:
        if not len(samples):
            return
        if self.max_lead_s > 0 and stream.t_first is not None:
            t_wait = time.monotonic()
            while not self._cancelled(stream.turn):
                lead = stream.audio_s - (time.monotonic() - stream.t_first)
                if lead <= self.max_lead_s:
                    break
                time.sleep(min(0.02, lead - self.max_lead_s))
            stream.paced_s += time.monotonic() - t_wait
            if self._cancelled(stream.turn):
                return
        if stream.t_first is None:
            stream.t_first = time.monotonic()
        stream.audio_s += len(samples) / self.sample_rate
        chunk = SpeechChunk(stream.turn, stream.seq, samples.astype(np.float32, copy=False),
                            self.sample_rate, False, stream.pending_text)
        stream.pending_text = ""
        stream.seq += 1
        stats = self.stats.get(stream.turn)
        if stats is not None:
            stats.audio_s += len(samples) / self.sample_rate
        self.on_chunk(chunk)

    def _end(self, stream: _Stream, reason: str) -> None:
        text = stream.pending_text if reason == "done" else ""
        self.on_chunk(SpeechChunk(stream.turn, stream.seq, np.zeros(0, np.float32),
                                  self.sample_rate, True, text, reason))
        self._count(f"streams_{reason}")
        stats = self.stats.get(stream.turn)
        if stats is not None:
            self.on_turn_done(stream.turn, stats)


@dataclass
class _Stream:
    turn: int
    seq: int = 0
    pending_text: str = ""  # answer text not yet attached to a published chunk
    t_first: float | None = None  # when the first chunk went out (playback starts then)
    audio_s: float = 0.0  # seconds of audio published
    paced_s: float = 0.0  # time spent holding audio back (max_lead_s), not synthesizing
