"""Synthesized speech for default enrollment, tests and the benchmark (espeak-ng). Pure Python.

espeak-ng's ``cmn-latn-pinyin`` voice speaks Mandarin with tones; its variants (``+f2``,
``+m3``, ``+klatt``...), speeds and pitches give a crude spread of "speakers". It is
formant synthesis, so figures measured on it are a floor/ceiling check, not a promise
about real voices.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from dataclasses import dataclass

import numpy as np

from gamgin_common.audio import resample

RATE = 16000
MANDARIN = "cmn-latn-pinyin"


class SynthError(RuntimeError):
    pass


def espeak(text: str, voice: str = MANDARIN, speed: int = 150, pitch: int = 50,
           rate: int = RATE) -> np.ndarray:
    """Text -> float32 mono samples at `rate` (espeak-ng writes 22.05 kHz WAV to stdout)."""
    if shutil.which("espeak-ng") is None:
        raise SynthError("espeak-ng is not installed (Debian package espeak-ng; scripts/setup)")
    out = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch),
                          "--stdout", text], capture_output=True, check=False)
    if out.returncode != 0 or len(out.stdout) < 44:
        raise SynthError(f"espeak-ng failed for voice {voice!r}: {out.stderr.decode()[:200]}")
    with wave.open(io.BytesIO(out.stdout)) as w:
        sr = w.getframerate()
        # espeak's streamed header has a bogus frame count; read what is there
        raw = out.stdout[44:]
    x = np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
    return resample(x, sr, rate)


@dataclass(frozen=True)
class Speaker:
    variant: str  # espeak variant suffix, "" = default voice
    speed: int  # words per minute
    pitch: int  # 0..99

    @property
    def voice(self) -> str:
        return MANDARIN + (f"+{self.variant}" if self.variant else "")

    def say(self, text: str) -> np.ndarray:
        return espeak(text, self.voice, self.speed, self.pitch)

    def __str__(self) -> str:
        return f"{self.variant or 'default'}/s{self.speed}/p{self.pitch}"


# The default enrollment: espeak's default voice at three speeds plus three other
# variants, so the out-of-the-box templates cover more than one synthetic "speaker".
# None of them is in TEST_SPEAKERS.
ENROLL_SPEAKERS = [Speaker("", 130, 50), Speaker("", 150, 50), Speaker("", 170, 50),
                   Speaker("m2", 150, 45), Speaker("f3", 150, 60), Speaker("m5", 160, 50)]

# Held-out "speakers" for tests and the benchmark: other variants, speeds, pitches.
TEST_SPEAKERS = [
    Speaker("m3", 140, 40), Speaker("f2", 160, 65), Speaker("klatt", 150, 50),
    Speaker("m7", 175, 35), Speaker("f4", 135, 70), Speaker("", 120, 55),
    Speaker("m1", 185, 50), Speaker("f1", 150, 80),
]

WAKE_WORD = "金坚"


def pad(x: np.ndarray, before_s: float, after_s: float, rate: int = RATE) -> np.ndarray:
    return np.concatenate([np.zeros(int(before_s * rate), np.float32), x,
                           np.zeros(int(after_s * rate), np.float32)])
