"""Shared fixtures: real models from models/, real espeak-ng speech."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np
import pytest

from gamgin_common.audio import resample
from gamgin_common.paths import resolve_model
from gamgin_common.testing import espeak_wav, read_wav

SR = 16_000


@functools.lru_cache(maxsize=32)
def _speech(text: str, voice: str, speed: int) -> np.ndarray:
    path = Path(tempfile.mkdtemp(prefix="gamgin-stt-")) / "s.wav"
    x, rate = read_wav(espeak_wav(text, path, voice=voice, speed=speed))
    return resample(x, rate, SR)


@pytest.fixture(scope="session")
def speech():
    """speech(text, voice="en-us", speed=160) -> 16 kHz float32 samples."""
    def make(text: str, voice: str = "en-us", speed: int = 160) -> np.ndarray:
        return _speech(text, voice, speed).copy()
    return make


@pytest.fixture(scope="session")
def vad_path() -> Path:
    return resolve_model("silero_vad.onnx")


@pytest.fixture(scope="session")
def recognizer():
    from gamgin_stt.backends import RecognizerConfig, load_recognizer

    return load_recognizer("ct2", RecognizerConfig())
