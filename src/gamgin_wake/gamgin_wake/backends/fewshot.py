"""Few-shot, fully offline wake detector: enrolled templates, two stages.

Stage 1 (every hop, ~3 ms): the last `window_s` of audio through the speech-embedding
model; subsequence DTW (cosine) against each template; a distance under `threshold`
makes a candidate. The candidate is held while later hops match better, so the check
sees the best-aligned window.
Stage 2 (only on candidates): WhisperVerifier on the matched stretch (+ margins).
Measured on espeak speech (README): DTW alone lets through near-misses such as 新鲜 and
金钱; the Whisper check removes most of them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gamgin_wake.core import Detection
from gamgin_wake.embedding import HOP_SAMPLES, MIN_SAMPLES, RATE, SpeechEmbedding, subsequence_dtw
from gamgin_wake.verify import WhisperVerifier

TEMPLATE_PAD_S = 0.3  # silence around each template: the embedding sees 775 ms at a time


@dataclass
class _Candidate:
    distance: float
    word_start: int  # stream sample indices
    word_end: int
    hops: int = 0


class FewShotBackend:
    name = "fewshot"

    def __init__(self, keyword: str, templates: list[np.ndarray], embedding: SpeechEmbedding,
                 threshold: float = 0.09, verifier: WhisperVerifier | None = None,
                 verify_min_score: float = -5.4, distance_weight: float = 10.0,
                 window_s: float = 2.0, hop_s: float = 0.16, max_hold_hops: int = 3,
                 verify_margin_s: float = 0.25,
                 verify_lead_s: tuple[float, ...] = (0.25, 0.05),
                 on_decision: Callable[[dict], None] | None = None) -> None:
        if not templates:
            raise ValueError("no templates")
        self.keyword, self.embedding, self.threshold = keyword, embedding, threshold
        self.verifier = verifier
        # stage 2 accepts when  score - distance_weight * distance >= verify_min_score:
        # a close DTW match needs less evidence from Whisper than a marginal one
        self.verify_min_score, self.distance_weight = verify_min_score, distance_weight
        pad = np.zeros(int(TEMPLATE_PAD_S * RATE), np.float32)
        self.templates = [embedding(np.concatenate([pad, t, pad])) for t in templates]
        self.template_len = [len(t) for t in templates]
        self.window = max(int(window_s * RATE), MIN_SAMPLES)
        # a multiple of the embedding hop, so frames line up from one window to the next
        self.hop = max(HOP_SAMPLES, int(hop_s * RATE) // HOP_SAMPLES * HOP_SAMPLES)
        self.max_hold_hops = max_hold_hops
        self.margin = int(verify_margin_s * RATE)
        # Whisper is forced to read the keyword from the window's start, so speech just
        # before the word ("你好，金坚") drags the score down: try a tight start as well
        self.leads = [int(s * RATE) for s in verify_lead_s] or [self.margin]
        self.keep = self.window + max(self.leads) + self.margin + 2 * self.hop
        # every stage-1 candidate and what stage 2 said, for logs, diagnostics and tuning
        self.decisions: deque[dict] = deque(maxlen=64)
        self.on_decision = on_decision
        self.stats = {"hops": 0, "candidates": 0, "verified": 0, "rejected": 0}
        self.reset()

    def reset(self) -> None:
        self._buf = np.zeros(0, np.float32)
        self._buf_start = getattr(self, "_fed", 0)  # stream index of _buf[0]
        self._fed = self._buf_start
        self._since_hop = 0
        self._cand: _Candidate | None = None
        self._decided_end = -10 * RATE  # word end of the last candidate already decided

    def close(self) -> None:
        self.verifier = None

    def process(self, samples: np.ndarray) -> list[Detection]:
        out: list[Detection] = []
        x = np.asarray(samples, dtype=np.float32)
        while len(x):
            take = min(len(x), self.hop - self._since_hop)
            self._buf = np.concatenate([self._buf, x[:take]])
            x = x[take:]
            self._fed += take
            self._since_hop += take
            if self._since_hop >= self.hop:
                self._since_hop = 0
                det = self._hop()
                if det is not None:
                    out.append(det)
            if len(self._buf) > self.keep:
                drop = len(self._buf) - self.keep
                self._buf = self._buf[drop:]
                self._buf_start += drop
        return out

    def _hop(self) -> Detection | None:
        if len(self._buf) < self.window:
            return None
        self.stats["hops"] += 1
        win_start = self._fed - self.window
        emb = self.embedding(self._buf[-self.window:])
        best = (np.inf, 0, 0)
        for tmpl, n in zip(self.templates, self.template_len, strict=True):
            d, j = subsequence_dtw(tmpl, emb)
            if d < best[0]:
                # frame j sees samples [j*HOP, j*HOP + MIN_SAMPLES) of the window; the
                # template's last frame ended TEMPLATE_PAD_S after its word
                end = win_start + j * HOP_SAMPLES + MIN_SAMPLES - int(TEMPLATE_PAD_S * RATE)
                best = (d, end - n, end)
        d, start, end = best
        if d < self.threshold and abs(end - self._decided_end) > 0.4 * RATE:
            if self._cand is None or d < self._cand.distance:
                hops = 0 if self._cand is None else self._cand.hops
                self._cand = _Candidate(d, start, end, hops)
                if hops == 0:
                    self.stats["candidates"] += 1
        if self._cand is None:
            return None
        self._cand.hops += 1
        improving = d <= self._cand.distance and d < self.threshold
        if improving and self._cand.hops < self.max_hold_hops:
            return None
        cand, self._cand = self._cand, None
        self._decided_end = cand.word_end
        return self._decide(cand)

    def _decided(self, decision: dict) -> None:
        self.decisions.append(decision)
        if self.on_decision is not None:
            self.on_decision(decision)

    def accepts(self, verify_score: float, distance: float) -> bool:
        return verify_score - self.distance_weight * distance >= self.verify_min_score

    def _decide(self, cand: _Candidate) -> Detection | None:
        conf = float(np.clip(1.0 - cand.distance / (2 * self.threshold), 0.0, 1.0))
        detail: dict[str, float | str] = {"distance": round(cand.distance, 4)}
        if self.verifier is not None:
            b = min(cand.word_end + self.margin - self._buf_start, len(self._buf))
            verdict, accepted = None, False
            for lead in self.leads:
                a = max(cand.word_start - lead - self._buf_start, 0)
                v = self.verifier(self._buf[a:b])
                if verdict is None or v.score > verdict.score:
                    verdict = v
                accepted = self.accepts(verdict.score, cand.distance)
                if accepted:
                    break
            detail["verify"] = round(verdict.score, 3)
            if verdict.text:
                detail["heard"] = verdict.text
            self.stats["verified"] += 1
            if not accepted:
                self.stats["rejected"] += 1
                self._decided({**detail, "end": cand.word_end, "accepted": False})
                return None
        self._decided({**detail, "end": cand.word_end, "accepted": True})
        return Detection(self.keyword, conf, cand.word_end, self.name, detail)
