"""XTTS v2 (``coqui-tts``): multilingual neural voice cloned from a short speaker WAV.

An optional extra: the package pulls in torch, and the weights (~1.8 GB) come from a
model directory the user provides (``config.json``, ``model.pth``, ``vocab.json``,
``speakers_xtts.pth`` from the XTTS-v2 release); nothing is downloaded at run time.
XTTS streams audio while it generates (``inference_stream``), and its tokenizer refuses
text past a per-language limit (Chinese ~82 characters): the chunker keeps under it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from gamgin_tts.backends import EngineUnavailable

# XTTS language codes for our language keys
_LANG_CODES = {"zh": "zh-cn", "en": "en"}
# The tokenizer's own limits (TTS/tts/layers/xtts/tokenizer.py char_limits) when the loaded
# model does not expose them.
DEFAULT_LIMITS = {"zh": 82, "en": 250}
REQUIRED_FILES = ("config.json", "model.pth", "vocab.json")


class XttsEngine:
    name = "xtts"
    sample_rate = 24000
    languages = frozenset({"zh", "en"})

    def __init__(self, model_dir: str = "", speaker_wav: str = "", device: str = "cpu") -> None:
        try:
            import torch
            from TTS.tts.configs.xtts_config import XttsConfig
            from TTS.tts.models.xtts import Xtts
        except ImportError as exc:
            raise EngineUnavailable(
                f"XTTS needs coqui-tts ({exc}); `pip install coqui-tts` (pulls in torch), then "
                f"set xtts_model_dir to a directory with the XTTS-v2 files") from exc
        if not model_dir:
            raise EngineUnavailable(
                "xtts_model_dir is empty: set it to the XTTS-v2 model directory")
        mdir = Path(model_dir).expanduser()
        missing = [f for f in REQUIRED_FILES if not (mdir / f).is_file()]
        if missing:
            raise EngineUnavailable(
                f"XTTS model directory {mdir} lacks {', '.join(missing)}; copy the XTTS-v2 "
                f"release files there (they cannot be downloaded by the robot)")
        wav = Path(speaker_wav).expanduser()
        if not speaker_wav or not wav.is_file():
            raise EngineUnavailable(
                f"XTTS speaker WAV missing: {wav if speaker_wav else '(xtts_speaker_wav empty)'}; "
                f"set xtts_speaker_wav to 6-30 s of clean speech of the voice to clone")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise EngineUnavailable(f"xtts_device={device} but torch sees no CUDA device")
        config = XttsConfig()
        config.load_json(str(mdir / "config.json"))
        model = Xtts.init_from_config(config)
        model.load_checkpoint(config, checkpoint_dir=str(mdir), use_deepspeed=False)
        model.to(device)
        model.eval()
        self._torch = torch
        self._model = model
        self.sample_rate = int(getattr(config.audio, "output_sample_rate", 24000))
        self._latent, self._speaker = model.get_conditioning_latents(audio_path=[str(wav)])
        limits = getattr(getattr(model, "tokenizer", None), "char_limits", {}) or {}
        # keyed "zh" in current coqui-tts, "zh-cn" in older releases
        self.limits = {k: int(limits.get(k) or limits.get(code) or DEFAULT_LIMITS[k])
                       for k, code in _LANG_CODES.items()}
        self._interrupted = threading.Event()

    def synthesize(self, text: str, lang: str) -> Iterator[np.ndarray]:
        self._interrupted.clear()
        with self._torch.inference_mode():
            stream = self._model.inference_stream(
                text, _LANG_CODES.get(lang, "en"), self._latent, self._speaker,
                enable_text_splitting=False)  # our chunker already split the text
            for chunk in stream:
                if self._interrupted.is_set():
                    return
                yield chunk.detach().cpu().numpy().astype(np.float32).reshape(-1)

    def interrupt(self) -> None:
        # the generator is abandoned at its next chunk (~0.2-0.5 s of audio on a GPU)
        self._interrupted.set()

    def close(self) -> None:
        self._interrupted.set()
        self._model = None
