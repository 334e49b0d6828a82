"""The speaker's queue: what to play next, and forgetting it at once. Pure Python + numpy.

The audio device pulls fixed-size blocks from ``SpeechQueue.read`` in its real-time
callback; ROS callbacks push decoded chunks. A newer turn or a cancel flushes what is
queued, so the robot falls silent within one device block (~20 ms) plus the device
latency, not after the rest of the sentence.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class PlaybackEvent:
    """Emitted from the audio thread: a turn's first audible block, or its end."""

    turn_id: int
    kind: str  # "started" | "finished" | "flushed" | "stalled"
    monotonic: float


class SpeechQueue:
    """`stall_s` > 0: a turn whose audio ran out, with no end_of_stream and nothing new for
    that long, ends "stalled" (its end was lost on a best-effort link: without this the robot
    would stay "speaking", deaf to the user, until the next turn); its late chunks are
    dropped. Longer than any pause of a reply being written (the LLM between sentences)."""

    def __init__(self, max_seconds: float, sample_rate: int,
                 on_event: Callable[[PlaybackEvent], None] | None = None,
                 stall_s: float = 0.0) -> None:
        self.sample_rate = sample_rate
        self.max_samples = int(max_seconds * sample_rate)
        self.on_event = on_event or (lambda ev: None)
        self._lock = threading.Lock()
        self._blocks: deque[np.ndarray] = deque()
        self._queued = 0
        self._offset = 0  # read position inside _blocks[0]
        self.turn_id = 0
        self._ended = False  # end_of_stream seen for turn_id
        self._started = False  # first block of turn_id handed to the device
        self.cancelled_upto = 0  # turns <= this are never played
        self.dropped_stale = 0
        self.dropped_overflow = 0
        self.stall_s = stall_s
        self.stalled = 0
        self._last_push = 0.0  # monotonic time of turn_id's last chunk

    def push(self, turn_id: int, samples: np.ndarray, end_of_stream: bool = False) -> bool:
        """Queue samples (already at the device rate). False when dropped (stale/overflow)."""
        with self._lock:
            if turn_id <= self.cancelled_upto or turn_id < self.turn_id:
                self.dropped_stale += 1
                return False
            if turn_id > self.turn_id:
                self._flush_locked("flushed")
                self.turn_id, self._ended, self._started = turn_id, False, False
            if len(samples):
                if self._queued + len(samples) > self.max_samples:
                    self.dropped_overflow += 1
                    return False
                self._blocks.append(samples.astype(np.float32, copy=False))
                self._queued += len(samples)
            self._ended = self._ended or end_of_stream
            self._last_push = time.monotonic()
            return True

    def cancel(self, turn_id: int) -> None:
        """Stop `turn_id` and every older turn now; their late chunks are dropped."""
        with self._lock:
            self.cancelled_upto = max(self.cancelled_upto, turn_id)
            if self.turn_id <= turn_id:
                self._flush_locked("flushed")
                self._ended = True

    def _flush_locked(self, kind: str) -> None:
        had_audio = self._queued > 0
        self._blocks.clear()
        self._queued = 0
        self._offset = 0
        if had_audio and self._started:
            self.on_event(PlaybackEvent(self.turn_id, kind, time.monotonic()))

    @property
    def queued_seconds(self) -> float:
        return self._queued / self.sample_rate

    def read(self, n: int) -> np.ndarray:
        """n samples for the device; zeros where nothing is queued. Real-time safe enough:
        no allocation beyond the output block, lock held briefly."""
        out = np.zeros(n, dtype=np.float32)
        events: list[PlaybackEvent] = []
        with self._lock:
            filled = 0
            while filled < n and self._blocks:
                block = self._blocks[0]
                take = min(n - filled, len(block) - self._offset)
                out[filled:filled + take] = block[self._offset:self._offset + take]
                filled += take
                self._offset += take
                if self._offset >= len(block):
                    self._blocks.popleft()
                    self._offset = 0
            self._queued -= filled
            if filled and not self._started:
                self._started = True
                events.append(PlaybackEvent(self.turn_id, "started", time.monotonic()))
            if self._started and self._ended and not self._blocks and filled < n:
                events.append(PlaybackEvent(self.turn_id, "finished", time.monotonic()))
                self._started = False
                self._ended = False
            elif (self.stall_s > 0 and self._started and not self._ended and not self._blocks
                  and time.monotonic() - self._last_push > self.stall_s):
                events.append(PlaybackEvent(self.turn_id, "stalled", time.monotonic()))
                self.cancelled_upto = max(self.cancelled_upto, self.turn_id)
                self._started = False
                self._ended = True
                self.stalled += 1
        for ev in events:
            self.on_event(ev)
        return out
