"""The conversation's turn state machine and its latency trace. Pure Python, no ROS.

One turn at a time: IDLE -> LISTENING (wake) -> THINKING (final transcript) ->
SPEAKING (the speaker started playing) -> IDLE (playback finished). A new wake, or an
interrupt, while a turn is busy cancels it (CANCELLED, then the new turn), which every
node follows: the LLM stops generating, the TTS stops synthesizing, the speaker flushes.
Timeouts end a turn that would otherwise hang (nobody spoke, nothing was said back).

Times are nanoseconds of the wall clock (what the message headers carry).
"""

from __future__ import annotations

from dataclasses import dataclass, field

IDLE, LISTENING, THINKING, SPEAKING, CANCELLED = 0, 1, 2, 3, 4
STATE_NAMES = {IDLE: "idle", LISTENING: "listening", THINKING: "thinking",
               SPEAKING: "speaking", CANCELLED: "cancelled"}


@dataclass
class Trace:
    turn_id: int
    outcome: str = ""
    route: str = ""
    user_text: str = ""
    language: str = ""  # of the final transcript
    reply_text: str = ""
    wake: int = 0
    speech_start: int = 0
    speech_end: int = 0
    first_partial: int = 0
    final_transcript: int = 0
    first_token: int = 0
    first_audio: int = 0
    playback_start: int = 0
    end: int = 0

    def ms_after_speech_end(self, t: int) -> float:
        # a typed turn has no end of speech: its clock starts when the text arrived
        origin = self.speech_end or self.final_transcript
        return (t - origin) / 1e6 if t and origin else -1.0

    def summary(self) -> dict[str, float]:
        return {k: self.ms_after_speech_end(getattr(self, k))
                for k in ("final_transcript", "first_token", "first_audio", "playback_start")}


@dataclass
class StateChange:
    turn_id: int
    state: int
    reason: str


@dataclass
class TurnTracker:
    listen_timeout_s: float = 12.0  # wake -> final transcript (STT has its own window)
    think_timeout_s: float = 30.0  # final transcript -> first audio
    speak_timeout_s: float = 120.0  # a reply that never finishes playing
    # reply complete and no audio yet: the TTS ends its stream at once when there is nothing
    # to say; this only bounds the wait when it never does (TTS down). It must exceed the
    # TTS's first-sentence time on a loaded CPU, else a slow answer is cut off unheard.
    tail_s: float = 10.0
    # False when no speaker runs (`gamgin up --no-audio`): nobody reports playback, so a
    # turn speaks from its first synthesized audio and ends once the reply is complete and
    # the TTS has ended its stream (or, if it never does, tail_s after its last audio).
    await_playback: bool = True
    turn_id: int = 0
    state: int = IDLE
    trace: Trace | None = None
    _since: int = 0
    _reply_done_at: int = 0
    _audio_done: bool = False
    _last_audio: int = 0
    out_states: list[StateChange] = field(default_factory=list)
    out_traces: list[Trace] = field(default_factory=list)
    # Replies that came before their turn: the LLM and this node get a typed transcript at
    # the same time, and a busy turn node can hear the answer first (CI: the fast path's
    # whole reply and its speech in the 100 ms before, so the turn never ended). Kept per
    # newer turn id, replayed once its final transcript is here.
    _early: dict[int, list[tuple[str, tuple]]] = field(default_factory=dict)

    # ------------------------------------------------------------------ helpers
    def _set(self, state: int, reason: str, now: int) -> None:
        self.state, self._since = state, now
        self.out_states.append(StateChange(self.turn_id, state, reason))

    def _finish(self, outcome: str, now: int) -> None:
        if self.trace is not None:
            self.trace.outcome, self.trace.end = outcome, now
            self.out_traces.append(self.trace)
        self.trace = None
        self._reply_done_at, self._audio_done, self._last_audio = 0, False, 0

    def _begin(self, turn_id: int, now: int, reason: str, state: int) -> None:
        if self.state not in (IDLE, CANCELLED) and self.turn_id != turn_id:
            self._set(CANCELLED, f"superseded by turn {turn_id} ({reason})", now)
            self._finish("cancelled", now)
        self.turn_id = turn_id
        self.trace = Trace(turn_id)
        self._set(state, reason, now)

    def _current(self, turn_id: int) -> bool:
        return self.trace is not None and turn_id == self.turn_id

    def _keep_early(self, kind: str, turn_id: int, args: tuple) -> None:
        """An event of a turn not begun yet (newer than ours): kept for its replay."""
        if turn_id <= self.turn_id:
            return  # an old turn's: stale
        events = self._early.setdefault(turn_id, [])
        if len(events) < 2000:
            events.append((kind, args))
        for old in sorted(self._early)[:-4]:  # only the newest few turns can still begin
            del self._early[old]

    def _replay_early(self, turn_id: int) -> None:
        events = self._early.pop(turn_id, [])
        for old in [t for t in self._early if t <= turn_id]:
            del self._early[old]
        handlers = {"token": self.on_token, "audio": self.on_audio,
                    "playback": self.on_playback}
        for kind, args in events:
            handlers[kind](turn_id, *args)

    def awaiting_reply(self, turn_id: int) -> bool:
        """The turn's final transcript is out and no answer has begun: if the LLM was
        restarted meanwhile, the transcript died with it and should be given again."""
        return (self._current(turn_id) and self.state == THINKING
                and self.trace is not None and self.trace.first_token == 0)

    def drain(self) -> tuple[list[StateChange], list[Trace]]:
        states, traces = self.out_states, self.out_traces
        self.out_states, self.out_traces = [], []
        return states, traces

    # ------------------------------------------------------------------ events
    def on_wake(self, turn_id: int, stamp: int, now: int) -> None:
        if turn_id <= self.turn_id and self.trace is not None:
            return  # duplicate or stale wake
        self._begin(turn_id, now, "wake", LISTENING)
        assert self.trace is not None
        self.trace.wake = stamp

    def on_transcript(self, turn_id: int, is_final: bool, stamp: int, text: str,
                      speech_start: int, speech_end: int, now: int) -> None:
        if turn_id > self.turn_id or (self.trace is None and turn_id == self.turn_id == 0):
            # always-on listening or typed input: a turn without a wake
            self._begin(turn_id, now, "speech", LISTENING)
        if not self._current(turn_id) or self.state not in (LISTENING, THINKING):
            return
        tr = self.trace
        assert tr is not None
        tr.speech_start = tr.speech_start or speech_start
        if not is_final:
            tr.first_partial = tr.first_partial or stamp
            return
        tr.final_transcript, tr.user_text = stamp, text
        tr.speech_end = speech_end or tr.speech_end
        if not text.strip():
            self._set(IDLE, "nothing heard", now)
            self._finish("no speech", now)
            return
        self._set(THINKING, "final transcript", now)
        self._replay_early(turn_id)

    def on_token(self, turn_id: int, stamp: int, text: str, is_final: bool, route: str,
                 finish_reason: str, now: int) -> None:
        if not self._current(turn_id):
            self._keep_early("token", turn_id, (stamp, text, is_final, route, finish_reason,
                                                now))
            return
        tr = self.trace
        assert tr is not None
        if text and not tr.first_token:
            tr.first_token = stamp
        tr.reply_text += text
        tr.route = route or tr.route
        if is_final:
            self._reply_done_at = now
            if finish_reason == "error":
                tr.outcome = "error"
            self._end_unplayed(now)

    def _end_unplayed(self, now: int) -> None:
        """Without a speaker: the turn is over when the reply and its speech are complete."""
        tr = self.trace
        if (not self.await_playback and tr is not None and self.state == SPEAKING
                and self._reply_done_at and self._audio_done):
            self._set(IDLE, "reply complete (no speaker)", now)
            self._finish(tr.outcome or "answered", now)

    def on_audio(self, turn_id: int, stamp: int, has_samples: bool, end_of_stream: bool,
                 now: int) -> None:
        if not self._current(turn_id):
            self._keep_early("audio", turn_id, (stamp, has_samples, end_of_stream, now))
            return
        tr = self.trace
        assert tr is not None
        if has_samples and not tr.first_audio:
            tr.first_audio = stamp
        if has_samples:
            self._last_audio = now
            if not self.await_playback and self.state == THINKING:
                self._set(SPEAKING, "speech synthesized (no speaker)", now)
        if end_of_stream:
            self._audio_done = True
            if not tr.first_audio:
                self._reply_done_at = self._reply_done_at or now  # nothing to play
            self._end_unplayed(now)

    def on_playback(self, turn_id: int, kind: str, stamp: int, now: int) -> None:
        if not self._current(turn_id):
            self._keep_early("playback", turn_id, (kind, stamp, now))
            return
        tr = self.trace
        assert tr is not None
        if kind == "started":
            tr.playback_start = tr.playback_start or stamp
            if self.state != SPEAKING:
                self._set(SPEAKING, "playback started", now)
        elif kind == "finished":
            outcome = tr.outcome or "answered"
            self._set(IDLE, "playback finished", now)
            self._finish(outcome, now)

    def on_notice(self, turn_id: int, text: str, route: str, now: int) -> None:
        """The robot speaks on its own (e.g. "my brain is away"): a turn with no user
        words, so every node follows it as usual (the speaker's events end it; the wake
        node knows the voice for its own). It cancels a turn in progress."""
        self._begin(turn_id, now, route, THINKING)
        assert self.trace is not None
        self.trace.route, self.trace.reply_text = route, text
        self._reply_done_at = now

    def interrupt(self, now: int, reason: str = "interrupt") -> bool:
        if self.trace is None or self.state in (IDLE, CANCELLED):
            return False
        self._set(CANCELLED, reason, now)
        self._finish("cancelled", now)
        return True

    def tick(self, now: int) -> None:
        if self.trace is None:
            return
        age = (now - self._since) / 1e9
        if self.state == LISTENING and age > self.listen_timeout_s:
            self._set(IDLE, "listen timeout", now)
            self._finish("no speech", now)
        elif self.state == THINKING and self._reply_done_at and not self.trace.first_audio and (
                self._audio_done or (now - self._reply_done_at) / 1e9 > self.tail_s):
            self._set(IDLE, "reply had no audio" if self._audio_done else "no audio from tts", now)
            self._finish(self.trace.outcome or "answered", now)
        elif self.state == THINKING and age > self.think_timeout_s:
            self._set(CANCELLED, "think timeout", now)
            self._finish("error", now)
        elif (self.state == SPEAKING and not self.await_playback and self._reply_done_at
              and (now - max(self._last_audio, self._reply_done_at)) / 1e9 > self.tail_s):
            self._set(IDLE, "reply complete, tts stream never ended (no speaker)", now)
            self._finish(self.trace.outcome or "answered", now)
        elif self.state == SPEAKING and age > self.speak_timeout_s:
            self._set(CANCELLED, "speak timeout", now)
            self._finish("error", now)
