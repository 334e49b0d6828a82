"""What the wake stage decides, without ROS: which detections become wakes, and their ids.

- ``WakeBackend``: the one small interface every detector implements (fewshot, porcupine).
- ``WakeGate``: refractory period and the self-voice gate (the robot must not wake on
  its own voice while it speaks, unless barge-in is enabled).
- ``TurnIds``: a new, monotonic turn id per wake that a restart does not reuse.
- ``StreamClock``: maps a sample index of the mic stream back to capture time.
- ``PlayedAudio``: what the speaker played lately, to tell the robot's own 金坚 from the
  user's when echo cancellation lets the user interrupt.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

RATE = 16000


@dataclass
class Detection:
    keyword: str
    confidence: float  # in [0, 1]
    end_sample: int  # estimated end of the word, as an index into the stream fed so far
    backend: str
    detail: dict[str, float | str] = field(default_factory=dict)  # scores, for logs/bench


class WakeBackend(Protocol):
    name: str
    keyword: str

    def process(self, samples: np.ndarray) -> list[Detection]:
        """Feed 16 kHz mono float32 samples (any length); return the wakes they complete."""
        ...

    def reset(self) -> None:
        """Forget buffered audio (after a wake, or when the stream restarts)."""
        ...

    def close(self) -> None:
        ...


class TurnIds:
    """Turn ids in deciseconds since 2025-01-01 UTC (fits uint32 until ~2038), never
    repeating: a restarted node starts above any id it gave out before (unless the clock
    goes back), and two wakes in the same 100 ms still get distinct ids."""

    EPOCH = 1735689600  # 2025-01-01T00:00:00Z

    def __init__(self, clock=time.time) -> None:
        self._clock = clock
        self.last = 0

    def next(self) -> int:
        now = int((self._clock() - self.EPOCH) * 10) & 0xFFFFFFFF
        self.last = max(self.last + 1, now)
        return self.last


class WakeGate:
    """Decides whether a detection may wake the robot. Times are seconds on one clock
    (the node uses ROS/wall time in seconds for both audio and state messages).

    - refractory: no second wake within ``refractory_s`` of the last one's word end (one
      utterance gives one wake even when several sliding windows match);
    - self-voice: while the robot speaks (speaker reports SPEAKING on audio/playback, or
      the turn state is SPEAKING) and until ``self_voice_tail_s`` after it stops (echo
      still in the room / audio buffers), detections are dropped unless ``barge_in``, or
      ``barge_in_with_aec`` and the microphone reports the robot's echo cancelled.
    """

    def __init__(self, refractory_s: float = 2.0, barge_in: bool = False,
                 self_voice_tail_s: float = 0.5, max_speaking_s: float = 300.0,
                 barge_in_with_aec: bool = True) -> None:
        self.refractory_s = refractory_s
        self.barge_in = barge_in
        self.barge_in_with_aec = barge_in_with_aec
        self.echo_cancelled = False  # the microphone's echo canceller has the room
        self.tail_s = self_voice_tail_s
        # a lost "IDLE" must not deafen the robot forever
        self.max_speaking_s = max_speaking_s
        self._last_wake: float | None = None
        self._speaking_since: dict[str, float] = {}  # source -> start
        self._spoke_until = float("-inf")  # end of the most recent finished speech

    def speaking(self, source: str, is_speaking: bool, at: float) -> None:
        """Record that `source` ("playback" or "turn") started/stopped speech at `at`."""
        if is_speaking:
            self._speaking_since.setdefault(source, at)
        elif source in self._speaking_since:
            self._speaking_since.pop(source)
            self._spoke_until = max(self._spoke_until, at)

    def is_speaking(self, at: float) -> bool:
        return any(at - s < self.max_speaking_s for s in self._speaking_since.values())

    def check(self, word_end: float, word_start: float | None = None) -> str | None:
        """None if the wake may fire, else the reason it is suppressed."""
        start = word_end if word_start is None else word_start
        if self._last_wake is not None and word_end - self._last_wake < self.refractory_s:
            return "refractory"
        if not (self.barge_in or (self.barge_in_with_aec and self.echo_cancelled)):
            if self._over_own_voice(word_end, start):
                return "self_voice"
        return None

    def _over_own_voice(self, word_end: float, word_start: float) -> bool:
        """The robot was speaking (or its echo still in the room) when the word was said."""
        return (any(s - self.tail_s <= word_end and word_end - s < self.max_speaking_s
                    for s in self._speaking_since.values())
                or word_start <= self._spoke_until + self.tail_s)

    def allowed_over_own_voice(self, word_end: float, word_start: float | None = None) -> bool:
        """A wake that ``check`` lets through only because the echo canceller has the room:
        the robot is speaking (or just was), so the word may be its own, under-cancelled
        (a residual 15 dB down still scores 0.999 on the trained model)."""
        if self.barge_in or not (self.barge_in_with_aec and self.echo_cancelled):
            return False
        return self._over_own_voice(word_end, word_end if word_start is None else word_start)

    def fired(self, word_end: float) -> None:
        self._last_wake = word_end


class StreamClock:
    """Sample index of the mic stream -> capture time (s), from each chunk's header stamp."""

    def __init__(self, rate: int = RATE) -> None:
        self.rate = rate
        self._anchor: tuple[int, float] | None = None  # (sample index, time of that sample)
        self.samples = 0  # samples fed so far

    def add(self, n: int, stamp: float | None) -> None:
        """A chunk of `n` samples whose first sample was captured at `stamp` (None: unknown)."""
        if stamp is not None and stamp > 0:
            self._anchor = (self.samples, stamp)
        elif self._anchor is None:
            self._anchor = (self.samples, time.time())
        self.samples += n

    def time_of(self, sample: int) -> float:
        if self._anchor is None:
            return time.time()
        idx, t = self._anchor
        return t + (sample - idx) / self.rate


class PlayedAudio:
    """The speaker's output (audio/reference, 16 kHz) of the last ``keep_s`` seconds, placed
    on the wall clock by each chunk's stamp (when it reaches the speaker). Silence where
    nothing was played."""

    def __init__(self, keep_s: float = 6.0, rate: int = RATE) -> None:
        self.keep_s, self.rate = keep_s, rate
        self._chunks: list[tuple[float, np.ndarray]] = []  # (stamp of first sample, samples)

    def add(self, samples: np.ndarray, stamp: float) -> None:
        x = np.asarray(samples, np.float32)
        if x.size == 0:
            return
        self._chunks.append((stamp, x))
        horizon = stamp + len(x) / self.rate - self.keep_s
        while self._chunks and self._chunks[0][0] + len(self._chunks[0][1]) / self.rate \
                < horizon:
            self._chunks.pop(0)

    def window(self, t0: float, t1: float) -> np.ndarray | None:
        """Samples played in [t0, t1); None if the speaker played nothing audible there."""
        n = max(0, round((t1 - t0) * self.rate))
        out = np.zeros(n, np.float32)
        for stamp, x in self._chunks:
            a = round((stamp - t0) * self.rate)
            lo, hi = max(a, 0), min(a + len(x), n)
            if hi > lo:
                out[lo:hi] = x[lo - a:hi - a]
        return out if n and float(np.max(np.abs(out))) > 1e-3 else None
