"""Stage 2 of the few-shot detector: does the candidate window *say* the wake word?

Whisper base (CTranslate2) runs its encoder on the window's own length (≤ 3 s) instead
of Whisper's 30 s, which keeps a check at ~50-80 ms on one core. Two ways to use it:

- ``forced`` (default): the mean log-probability Whisper gives the keyword's tokens when
  forced to read them from this audio (``Whisper.align`` returns per-token
  probabilities). It does not need Whisper to *transcribe* the word right, only to find
  it likelier here than in other speech.
- ``pinyin``: free greedy transcription, then toneless pinyin (pypinyin) compared
  syllable by syllable with the keyword's. Measured on espeak speech, Whisper base hears
  espeak "金坚" as "天天"/"见见"/"铭铭", so this mode rejects most true wakes; it is kept
  for real voices and bigger Whisper models (README, "Verification").
No ROS.
"""

from __future__ import annotations

from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path

import numpy as np

RATE = 16000
MAX_WINDOW_S = 3.0


def to_pinyin(text: str) -> list[str]:
    """Toneless pinyin syllables of `text` (latin words lower-cased, punctuation dropped)."""
    from pypinyin import lazy_pinyin

    out: list[str] = []
    for tok in lazy_pinyin(text):
        out += "".join(c if c.isalpha() else " " for c in tok.lower()).split()
    return out


def pinyin_match(heard: list[str], target: list[str]) -> float:
    """Best mean per-syllable similarity (0..1) of `target` against any run of `heard`."""
    if not target or len(heard) < len(target):
        return 0.0
    def at(i: int) -> float:
        pairs = zip(heard[i:], target, strict=False)
        return sum(SequenceMatcher(None, h, t).ratio() for h, t in pairs) / len(target)

    return max(at(i) for i in range(len(heard) - len(target) + 1))


@dataclass
class Verdict:
    score: float  # forced: mean log-prob of the keyword tokens (<= 0); pinyin: similarity 0..1
    text: str = ""  # pinyin mode: what Whisper heard


class WhisperVerifier:
    def __init__(self, model_dir: str | Path, keyword: str, mode: str = "forced",
                 language: str = "zh", threads: int = 1, device: str = "cpu",
                 compute_type: str = "int8") -> None:
        import ctranslate2
        import tokenizers
        from faster_whisper.feature_extractor import FeatureExtractor
        from faster_whisper.tokenizer import Tokenizer

        if mode not in ("forced", "pinyin"):
            raise ValueError(f"verify_mode {mode!r}: expected 'forced' or 'pinyin'")
        model_dir = Path(model_dir)
        self.model = ctranslate2.models.Whisper(str(model_dir), device=device,
                                                compute_type=compute_type, intra_threads=threads)
        tok = tokenizers.Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer = Tokenizer(tok, multilingual=True, task="transcribe", language=language)
        self.features = FeatureExtractor(feature_size=self.model.n_mels)
        self.mode, self.keyword = mode, keyword
        self.start = [*self.tokenizer.sot_sequence, self.tokenizer.no_timestamps]
        self.keyword_tokens = self.tokenizer.encode(keyword)
        self.target_pinyin = to_pinyin(keyword)

    def _features(self, samples: np.ndarray):
        import ctranslate2

        x = np.asarray(samples, dtype=np.float32)[: int(MAX_WINDOW_S * RATE)]
        feats = self.features(x, padding=0)
        feats = feats[:, : feats.shape[1] // 2 * 2]  # the encoder's conv has stride 2
        return ctranslate2.StorageView.from_array(np.ascontiguousarray(feats[None], np.float32)), \
            feats.shape[1]

    def __call__(self, samples: np.ndarray) -> Verdict:
        feats, frames = self._features(samples)
        if self.mode == "forced":
            res = self.model.align(feats, self.start, [self.keyword_tokens], frames)[0]
            score = float(np.mean(np.log(np.asarray(res.text_token_probs) + 1e-9)))
            return Verdict(score)
        res = self.model.generate(feats, [self.start], beam_size=1, max_length=24)
        ids = [t for t in res[0].sequences_ids[0] if t < self.tokenizer.eot]
        text = self.tokenizer.decode(ids).strip()
        score = pinyin_match(to_pinyin(text), self.target_pinyin)
        return Verdict(score, text)
