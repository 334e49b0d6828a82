"""Start / end of speech from per-frame VAD probabilities. Pure Python.

Hysteresis (``threshold`` to start, ``neg_threshold`` to count silence), a minimum run
of voiced frames before speech counts (a click is not speech), a pre-roll kept before
the first voiced frame (Whisper needs the onset), and a hang-over of silence before the
utterance ends (a breath between words must not end the turn). A ``PAUSE`` event fires
once ``post_roll`` of silence has passed: the utterance *may* be over, so the caller can
already transcribe it while the hang-over runs (the speculative final).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from gamgin_stt.vad import FRAME, SAMPLE_RATE

FRAME_S = FRAME / SAMPLE_RATE


def frames(ms: float) -> int:
    return max(0, round(ms / 1000.0 / FRAME_S))


@dataclass
class VadConfig:
    threshold: float = 0.5
    neg_threshold: float = 0.35
    min_speech_ms: float = 96.0  # three 32 ms frames
    pre_roll_ms: float = 320.0
    post_roll_ms: float = 96.0  # silence kept after the last voiced frame; speculation starts here
    hang_over_ms: float = 300.0  # silence that ends the utterance (see README: cut-off risk)
    max_utterance_s: float = 15.0

    def validate(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"vad threshold {self.threshold} must be in (0, 1)")
        if not 0.0 < self.neg_threshold <= self.threshold:
            raise ValueError(f"vad neg_threshold {self.neg_threshold} must be in (0, threshold]")
        if self.post_roll_ms > self.hang_over_ms:
            raise ValueError("post_roll_ms must not exceed hang_over_ms")
        if not 1.0 <= self.max_utterance_s <= 28.0:
            # Whisper's window is 30 s; longer speech is cut into parts below that.
            raise ValueError(f"max_utterance_s {self.max_utterance_s} must be in [1, 28]")


class Event(Enum):
    START = "start"  # speech began at ``start_frame``
    PAUSE = "pause"  # post-roll of silence reached: a final may be computed speculatively
    RESUME = "resume"  # speech came back after a PAUSE: the speculation is void
    END = "end"  # hang-over reached: the utterance is over
    CUT = "cut"  # the utterance reached max length: transcribe a part, keep listening


class SpeechSegmenter:
    """Feeds on one probability per frame; frame indices count from ``reset``."""

    def __init__(self, cfg: VadConfig) -> None:
        cfg.validate()
        self.cfg = cfg
        self._min_speech = max(1, frames(cfg.min_speech_ms))
        self._post_roll = frames(cfg.post_roll_ms)
        self._hang_over = max(1, frames(cfg.hang_over_ms))
        self._max_frames = frames(cfg.max_utterance_s * 1000)
        self.reset()

    def reset(self) -> None:
        self.n = 0  # frames seen
        self.in_speech = False
        self.start_frame = 0  # first voiced frame of the utterance
        self.last_voiced = -1  # last frame above threshold
        self._run = 0  # consecutive voiced frames while not in speech
        self._silence = 0
        self._paused = False
        self.probs: list[float] = []  # of the current utterance, for choosing a cut point
        self.part_start = 0  # where the current part begins (moves on CUT)

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def silent_frames(self) -> int:
        """Frames of silence since the last voiced one (0 while speech goes on)."""
        return self._silence

    @property
    def pre_roll_frames(self) -> int:
        return frames(self.cfg.pre_roll_ms)

    @property
    def post_roll_frames(self) -> int:
        return self._post_roll

    def push(self, prob: float) -> Event | None:
        i = self.n
        self.n += 1
        if not self.in_speech:
            self._run = self._run + 1 if prob >= self.cfg.threshold else 0
            if self._run >= self._min_speech:
                self.in_speech = True
                self.start_frame = self.part_start = i - self._run + 1
                self.last_voiced = i
                self._silence = 0
                self._paused = False
                self.probs = [prob]
                return Event.START
            return None
        self.probs.append(prob)
        if prob >= self.cfg.threshold or (prob >= self.cfg.neg_threshold and self._silence == 0):
            self.last_voiced = i
            self._silence = 0
            if self._paused:
                self._paused = False
                return Event.RESUME
        else:
            self._silence += 1
            if self._silence >= self._hang_over:
                self.in_speech = False
                self._run = 0
                return Event.END
            if self._silence >= self._post_roll and not self._paused:
                self._paused = True
                return Event.PAUSE
        if i + 1 - self.part_start >= self._max_frames:
            return Event.CUT
        return None

    def end_now(self) -> None:
        """End the utterance before the hang-over (the caller knows it is complete)."""
        self.in_speech = False
        self._run = 0

    def cut_point(self, search_s: float = 2.0) -> int:
        """Frame to cut the current part at: the least speech-like frame of the last seconds."""
        look = min(len(self.probs), frames(search_s * 1000), self.n - self.part_start - 1)
        if look <= 0:
            return self.n
        tail = self.probs[-look:]
        k = min(range(look), key=lambda j: tail[j])
        return self.n - look + k + 1  # cut after the quietest frame

    def start_part(self, frame: int) -> None:
        self.part_start = frame
