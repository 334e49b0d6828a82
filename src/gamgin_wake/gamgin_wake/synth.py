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
WAKE_PHRASES = ["金坚", "金坚，把客厅的灯打开", "金坚，今天天气怎么样", "你好，金坚"]

# Ordinary speech and near-misses (shared syllables jin/jian, similar finals).
NEGATIVE_ZH = [
    "这个问题其实很简单", "我们明天下午见面吧", "今天天气很好", "金钱不是一切",
    "坚持就是胜利", "这道菜很新鲜", "请把文件精简一下", "经济发展很快",
    "我要去医院检查身体", "今年冬天特别冷", "把客厅的灯打开", "现在几点了",
    "他的建议很有意思", "金色的阳光", "尖叫的声音", "简单见面聊聊天",
]
NEGATIVE_EN = [
    "Turn on the living room light please.", "What time is it now?",
    "Jingle bells, jingle all the way.", "The gin and jam were on the table.",
    "Can you tell me a story about a cat?", "Jenny and Jane went to the gym.",
]


def add_noise(x: np.ndarray, snr_db: float, rng: np.random.Generator,
              kind: str = "pink") -> np.ndarray:
    """Mix noise at `snr_db` relative to the speech's active power (kind: white|pink)."""
    n = rng.standard_normal(len(x)).astype(np.float32)
    if kind == "pink":  # 1/f by shaping the spectrum: fan/room noise more than hiss
        spec = np.fft.rfft(n)
        f = np.arange(len(spec), dtype=np.float32)
        f[0] = 1.0
        n = np.fft.irfft(spec / np.sqrt(f), len(n)).astype(np.float32)
    active = x[np.abs(x) > 0.02 * (np.max(np.abs(x)) + 1e-9)]
    p_sig = float(np.mean(np.square(active))) if len(active) else 1e-6
    p_noise = float(np.mean(np.square(n))) + 1e-12
    return (x + n * np.sqrt(p_sig / (p_noise * 10 ** (snr_db / 10)))).astype(np.float32)


def pad(x: np.ndarray, before_s: float, after_s: float, rate: int = RATE) -> np.ndarray:
    return np.concatenate([np.zeros(int(before_s * rate), np.float32), x,
                           np.zeros(int(after_s * rate), np.float32)])
