"""Whisper through ``ctranslate2.models.Whisper`` directly: the low-latency backend.

faster-whisper's ``transcribe`` pads every input to Whisper's 30 s window; on 2 CPU
cores encoding that padding costs ~0.4 s of a ~0.5 s transcription of a short
command. The encoder accepts shorter inputs, so this backend encodes only the audio plus
some trailing silence, rounded up to a bucket (a few sizes keep CTranslate2's work
regular). The decode is capped by the audio length and collapsed if it loops.
"""

from __future__ import annotations

import math
import time

import numpy as np

from gamgin_stt.backends import (
    Recognition,
    RecognizerConfig,
    prompt_text,
    resolve_whisper_model,
)
from gamgin_stt.text import collapse_repeats, has_cjk, to_simplified

SAMPLE_RATE = 16_000
WINDOW_S = 30.0  # Whisper's positional embeddings cover 30 s (1500 encoder frames)
MAX_TOKENS = 448


def _faster_whisper_part(name: str):
    """One of faster-whisper's self-contained modules (the log-mel features: numpy; the
    tokenizer: HF tokenizers), loaded by path. ``import faster_whisper.x`` first runs the
    package's __init__, which imports PyAV (ffmpeg) and the whole transcription stack:
    16 MB PSS more for the loaded backend (measured) that it never uses."""
    import importlib.util
    import sys
    from pathlib import Path

    key = f"_gamgin_faster_whisper_{name}"
    if key not in sys.modules:
        spec = importlib.util.find_spec("faster_whisper")
        if spec is None or spec.origin is None:
            raise ImportError("faster-whisper is not installed (run scripts/setup)")
        part = importlib.util.spec_from_file_location(key, Path(spec.origin).parent /
                                                      f"{name}.py")
        module = importlib.util.module_from_spec(part)
        part.loader.exec_module(module)
        sys.modules[key] = module
    return sys.modules[key]


class Ct2Whisper:
    name = "ct2"

    def __init__(self, cfg: RecognizerConfig) -> None:
        import ctranslate2
        import tokenizers

        FeatureExtractor = _faster_whisper_part("feature_extractor").FeatureExtractor
        Tokenizer = _faster_whisper_part("tokenizer").Tokenizer

        self.cfg = cfg
        self.path = resolve_whisper_model(cfg.model)
        self._ct2 = ctranslate2
        self.model = ctranslate2.models.Whisper(
            str(self.path), device=cfg.device, compute_type=cfg.compute_type,
            intra_threads=cfg.cpu_threads, inter_threads=1,
        )
        self._hf = tokenizers.Tokenizer.from_file(str(self.path / "tokenizer.json"))
        self._Tokenizer = Tokenizer
        self._tokenizers: dict[str, Tokenizer] = {}
        self.features = FeatureExtractor(feature_size=self.model.n_mels)
        self.prior_language = ""  # language of the last final (set by the Transcriber)
        base = self.tokenizer("en")
        self._prompt_ids: list[int] = []
        text = prompt_text(cfg)
        # A Chinese prompt on an English decode costs accuracy (measured: WER 0.07 -> 0.13
        # on the bench's English set with hotwords 金坚), so it applies to zh decodes only.
        self._prompt_zh_only = has_cjk(text)
        if text:
            # Same place faster-whisper puts initial_prompt/hotwords: after <|startofprev|>.
            self._prompt_ids = [base.sot_prev, *base.encode(" " + text)[-(MAX_TOKENS // 2 - 1):]]

    def tokenizer(self, language: str):
        if language not in self._tokenizers:
            self._tokenizers[language] = self._Tokenizer(
                self._hf, self.model.is_multilingual, task="transcribe", language=language
            )
        return self._tokenizers[language]

    def window_s(self, duration_s: float) -> float:
        need = duration_s + self.cfg.min_tail_pad_s
        return min(WINDOW_S, math.ceil(need / self.cfg.bucket_s) * self.cfg.bucket_s)

    def recognize(self, samples: np.ndarray, final: bool, language: str | None = None
                  ) -> Recognition:
        t0 = time.perf_counter()
        samples = samples[: int(WINDOW_S * SAMPLE_RATE)]
        duration = len(samples) / SAMPLE_RATE
        win = self.window_s(duration)
        padded = np.zeros(int(win * SAMPLE_RATE), dtype=np.float32)
        padded[: len(samples)] = samples
        # padding=0: the zeros above are the padding, so normalization sees what Whisper
        # sees on a padded 30 s window (log-mel clamped to max - 8).
        feats = self.features(padded, padding=0)[:, : int(win * 100) // 2 * 2]
        enc = self.model.encode(
            self._ct2.StorageView.from_array(np.ascontiguousarray(feats[None])), to_cpu=False
        )
        lang = language or self.cfg.language
        if lang != "auto":
            return self._decode(enc, lang, duration, final, t0)
        probs = self._detect(enc)
        ranked = sorted(probs, key=probs.get, reverse=True)
        best = self._decode(enc, ranked[0], duration, final, t0)
        if (not final or len(ranked) < 2
                or probs[ranked[0]] >= self.cfg.language_decisive * probs[ranked[1]]):
            return best  # partials stay one decode: a lagging worker delays the final
        # Not decisive (short clips: espeak "how old are you" came out zh 0.41 / en 0.06 as
        # '哈吾大余'): decode the runner-up too and keep the better log p(language) + mean
        # token log-prob. Measured on the bench set: en 37 -> 37/39, zh 7 -> 8/10 right.
        other = self._decode(enc, ranked[1], duration, final, t0)
        score = {r.language: math.log(max(probs[r.language], 1e-6)) + r.avg_logprob
                 for r in (best, other)}
        win = other if score[other.language] > score[best.language] else best
        win.compute_s = time.perf_counter() - t0
        return win

    def _decode(self, enc, lang: str, duration: float, final: bool, t0: float) -> Recognition:
        tok = self.tokenizer(lang)
        context = self._prompt_ids if lang == "zh" or not self._prompt_zh_only else []
        prompt = [*context, *tok.sot_sequence, tok.no_timestamps]
        # ~3 tokens per English word, ~1.5 per Chinese character: 15 tokens/s is generous
        # for speech and stops a looping decode early.
        budget = min(MAX_TOKENS - len(prompt), int(10 + 15 * duration))
        res = self.model.generate(
            enc, [prompt], beam_size=self.cfg.beam_size if final else 1,
            max_length=budget, return_scores=True, return_no_speech_prob=True,
            suppress_blank=True, suppress_tokens=[-1],
        )[0]
        ids = [i for i in res.sequences_ids[0] if i < tok.eot]
        text = to_simplified(tok.decode(collapse_repeats(ids)).strip())
        return Recognition(
            text=text, language=lang, avg_logprob=float(res.scores[0]) if res.scores else -10.0,
            no_speech_prob=float(res.no_speech_prob), compute_s=time.perf_counter() - t0,
        )

    def _detect(self, enc) -> dict[str, float]:
        """Whisper's probabilities of the allowed languages, the household's language
        weighted by ``home_language_prior`` and the last final's by ``language_prior``
        (people rarely switch language between turns)."""
        probs = dict(self.model.detect_language(enc)[0])
        codes = list(self.cfg.languages) or [t[2:-2] for t in probs]
        out = {c: max(probs.get(f"<|{c}|>", 0.0), 1e-6) for c in codes}
        if self.cfg.home_language in out:
            out[self.cfg.home_language] *= self.cfg.home_language_prior
        if self.prior_language in out:
            out[self.prior_language] *= self.cfg.language_prior
        return out

    def close(self) -> None:
        self.model = None
