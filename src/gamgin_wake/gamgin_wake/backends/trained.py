"""The trained 金坚 detector: a small classifier over speech-embedding frames.

Every ``hop_s`` the new 80 ms frames of the stream are embedded (each frame once, see
``FrameStream``) and the classifier scores each 1.3 s window that ends at a new frame.
A window over ``threshold`` is a wake (optionally checked by Whisper first, as the
few-shot backend's candidates are); the next ``holdoff_s`` are not scored again, so one
word wakes once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np

from gamgin_wake.classifier import WakeClassifier
from gamgin_wake.core import Detection
from gamgin_wake.embedding import HOP_SAMPLES, MIN_SAMPLES, RATE, FrameStream, SpeechEmbedding
from gamgin_wake.verify import WhisperVerifier

KEEP_S = 2.5  # audio kept for the check: the longest lead + the word + a margin


class TrainedBackend:
    name = "trained"

    def __init__(self, keyword: str, model: WakeClassifier, embedding: SpeechEmbedding,
                 threshold: float | None = None, hop_s: float = 0.16, holdoff_s: float = 1.0,
                 verifier: WhisperVerifier | None = None, verify_min_score: float = -5.4,
                 verify_leads_s: tuple[float, ...] = (0.9, 0.65), patience: int = 0,
                 on_decision: Callable[[dict], None] | None = None) -> None:
        self.keyword, self.model = keyword, model
        # windows in a row over the threshold before a wake: a real word stays over it for
        # several 80 ms steps as it passes through the window, a chance match often not
        self.patience = int(patience or model.meta.get("patience", 1))  # 0: the model's
        self._run = 0
        # optional second stage: Whisper checks that the window says the word
        self.verifier, self.verify_min_score = verifier, verify_min_score
        self.leads = [int(s * RATE) for s in verify_leads_s]
        self._audio = np.zeros(0, np.float32)  # the last few seconds, for the check
        self._audio_start = 0
        self.threshold = float(model.threshold if threshold is None else threshold)
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold {self.threshold} must be in (0, 1)")
        self.frames_per_hop = max(1, round(hop_s * RATE / HOP_SAMPLES))
        self.holdoff = int(holdoff_s * RATE)
        self.stream = FrameStream(embedding, keep_frames=model.frames + self.frames_per_hop,
                                  raw=True)
        # Before 16 frames of the stream exist (start, or after a gap) the window is
        # filled with what silence looks like, so the first word is heard too.
        self._silence = embedding.raw(np.zeros(MIN_SAMPLES, np.float32))[:1]
        self.stream.frames = np.repeat(self._silence, model.frames, axis=0)
        self.on_decision = on_decision
        self.decisions: deque[dict] = deque(maxlen=64)
        self.stats = {"hops": 0, "wakes": 0}
        self.peak = 0.0  # highest score since the last report: what a person tunes from
        self._quiet_until = -1

    def reset(self) -> None:
        self._run = 0
        self.stream.restart()
        self.stream.frames = np.repeat(self._silence, self.model.frames, axis=0)
        self._quiet_until = -1

    def close(self) -> None:
        pass

    def process(self, samples: np.ndarray) -> list[Detection]:
        if self.verifier is not None:
            x = np.asarray(samples, np.float32)
            if self._audio_start + len(self._audio) != self.stream.fed:  # after a restart
                self._audio, self._audio_start = np.zeros(0, np.float32), self.stream.fed
            self._audio = np.concatenate([self._audio, x])
            keep = int(KEEP_S * RATE)
            if len(self._audio) > keep:
                self._audio_start += len(self._audio) - keep
                self._audio = self._audio[-keep:]
        new = self.stream.push(samples, min_new=self.frames_per_hop)
        if not new:
            return []
        self.stats["hops"] += 1
        f = self.stream.frames
        n = self.model.frames
        count = min(new, len(f) - n + 1)
        wins = np.stack([f[len(f) - n - k: len(f) - k] for k in range(count - 1, -1, -1)])
        scores = self.model.score(wins)
        self.peak = max(self.peak, float(scores.max()))
        first = self.stream.next_frame - count
        for k, s in enumerate(scores):
            end = self.stream.frame_end(first + k)
            self._run = self._run + 1 if s >= self.threshold else 0
            if self._run >= self.patience and end > self._quiet_until:
                self._run = 0
                self._quiet_until = end + self.holdoff
                detail: dict[str, float | str] = {"score": round(float(s), 3)}
                accepted = self._check(end, detail)
                decision = {**detail, "end": end, "accepted": accepted}
                self.decisions.append(decision)
                if self.on_decision is not None:
                    self.on_decision(decision)
                if not accepted:
                    return []
                self.stats["wakes"] += 1
                return [Detection(self.keyword, float(s), end, self.name, detail)]
        return []

    def _check(self, end: int, detail: dict) -> bool:
        """Stage 2, if configured: the best Whisper score over a few window starts."""
        if self.verifier is None:
            return True
        b = min(end + int(0.15 * RATE) - self._audio_start, len(self._audio))
        best = -np.inf
        for lead in self.leads:
            a = max(end - lead - self._audio_start, 0)
            best = max(best, self.verifier(self._audio[a:b]).score)
            if best >= self.verify_min_score:
                break
        detail["verify"] = round(float(best), 3)
        return bool(best >= self.verify_min_score)
