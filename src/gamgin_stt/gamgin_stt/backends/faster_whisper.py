"""faster-whisper's ``WhisperModel.transcribe`` as is: every call encodes a 30 s window.

Kept as the reference for accuracy and to show in the benchmark what the ``ct2``
backend saves; also the easiest path to features faster-whisper adds later.
"""

from __future__ import annotations

import time

import numpy as np

from gamgin_stt.backends import (
    Recognition,
    RecognizerConfig,
    prompt_text,
    resolve_whisper_model,
)
from gamgin_stt.text import has_cjk, to_simplified


class FasterWhisper:
    name = "faster_whisper"

    def __init__(self, cfg: RecognizerConfig) -> None:
        from faster_whisper import WhisperModel

        self.cfg = cfg
        self.path = resolve_whisper_model(cfg.model)
        self.model = WhisperModel(
            str(self.path), device=cfg.device, compute_type=cfg.compute_type,
            cpu_threads=cfg.cpu_threads, num_workers=1, local_files_only=True,
        )

    def recognize(self, samples: np.ndarray, final: bool, language: str | None = None
                  ) -> Recognition:
        t0 = time.perf_counter()
        lang = language or self.cfg.language
        if lang == "auto":
            # faster-whisper detects among all languages; restrict to ours like ct2 does.
            _, _, all_probs = self.model.detect_language(samples)
            probs = dict(all_probs)
            lang = max(self.cfg.languages, key=lambda c: probs.get(c, 0.0))
        use_prompt = lang == "zh" or not has_cjk(prompt_text(self.cfg))  # as in ct2_whisper
        segments, info = self.model.transcribe(
            samples, language=lang, beam_size=self.cfg.beam_size if final else 1,
            temperature=0.0, condition_on_previous_text=False, without_timestamps=True,
            initial_prompt=(self.cfg.initial_prompt or None) if use_prompt else None,
            hotwords=(self.cfg.hotwords or None) if use_prompt else None, vad_filter=False,
        )
        segs = list(segments)
        n = sum(max(1, len(s.tokens)) for s in segs)
        avg = sum(s.avg_logprob * max(1, len(s.tokens)) for s in segs) / n if segs else -10.0
        return Recognition(
            text=to_simplified("".join(s.text for s in segs).strip()), language=info.language,
            avg_logprob=float(avg),
            no_speech_prob=float(segs[0].no_speech_prob) if segs else 1.0,
            compute_s=time.perf_counter() - t0,
        )

    def close(self) -> None:
        self.model = None
