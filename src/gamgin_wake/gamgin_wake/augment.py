"""Room and noise for synthesized speech: what makes clean TTS clips look like a home.
Pure numpy, seeded by the caller's generator, so a recipe rebuilds the same data.

Nothing here is recorded: rooms are exponentially decaying noise tails (RT60 0.15-0.8 s),
noises are coloured noise, mains hum with harmonics, a kitchen's clatter, synthesized
music (notes with harmonics and envelopes, chords, a beat) and babble (speech clips
mixed over each other).
"""

from __future__ import annotations

import numpy as np

from gamgin_common.audio import resample

RATE = 16000
NOISE_KINDS = ("white", "pink", "brown", "hum", "clatter", "music")


def coloured(n: int, rng: np.random.Generator, slope: float) -> np.ndarray:
    """Noise with power ~ 1/f^slope (0 white, 1 pink, 2 brown), unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spec / f ** (slope / 2), n)
    return (x / (np.sqrt(np.mean(x * x)) + 1e-12)).astype(np.float32)


def hum(n: int, rng: np.random.Generator) -> np.ndarray:
    """A fridge or fan: mains hum with harmonics over a little broadband noise."""
    t = np.arange(n) / RATE
    base = rng.choice([50.0, 60.0]) * rng.uniform(0.98, 1.02)
    x = sum(rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * base * k * t + rng.uniform(0, 6))
            for k in range(1, 8))
    x = x + 0.3 * coloured(n, rng, 1.0)
    return (x / (np.sqrt(np.mean(x * x)) + 1e-12)).astype(np.float32)


def clatter(n: int, rng: np.random.Generator) -> np.ndarray:
    """Dishes and steps: random short decaying bursts of filtered noise."""
    x = np.zeros(n, np.float32)
    for _ in range(max(1, int(n / RATE * rng.uniform(1, 6)))):
        at = int(rng.integers(0, n))
        length = int(rng.uniform(0.02, 0.25) * RATE)
        burst = coloured(length, rng, rng.uniform(0, 1.5)) * np.exp(
            -np.arange(length) / (length / rng.uniform(3, 8)))
        end = min(n, at + length)
        x[at:end] += rng.uniform(0.2, 1.0) * burst[: end - at]
    return (x / (np.sqrt(np.mean(x * x)) + 1e-12)).astype(np.float32)


def music(n: int, rng: np.random.Generator) -> np.ndarray:
    """Notes of a random scale with harmonics and envelopes, sometimes chords and a beat."""
    x = np.zeros(n, np.float32)
    tempo = rng.uniform(0.15, 0.6)  # seconds per note
    root = rng.uniform(110, 330)
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12])
    t0 = 0
    while t0 < n:
        length = int(tempo * RATE * rng.choice([1, 1, 2, 0.5]))
        t = np.arange(length) / RATE
        note = np.zeros(length)
        for step in rng.choice(scale, size=int(rng.integers(1, 4))):
            f = root * 2 ** (step / 12)
            for k in range(1, 6):
                if f * k < RATE / 2:
                    note += rng.uniform(0.1, 1.0) / k * np.sin(2 * np.pi * f * k * t)
        note *= np.exp(-t / (tempo * rng.uniform(0.5, 2.0)))
        end = min(n, t0 + length)
        x[t0:end] += note[: end - t0]
        t0 += length
    if rng.random() < 0.5:  # a drum: low thump every beat
        beat = int(tempo * RATE * 2)
        k = np.arange(int(0.12 * RATE))
        kick = np.sin(2 * np.pi * 60 * k / RATE) * np.exp(-k / (0.03 * RATE))
        for at in range(0, n - len(kick), beat):
            x[at: at + len(kick)] += 1.5 * kick
    return (x / (np.sqrt(np.mean(x * x)) + 1e-12)).astype(np.float32)


def noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "white":
        return coloured(n, rng, 0.0)
    if kind == "pink":
        return coloured(n, rng, 1.0)
    if kind == "brown":
        return coloured(n, rng, 2.0)
    if kind == "hum":
        return hum(n, rng)
    if kind == "clatter":
        return clatter(n, rng)
    if kind == "music":
        return music(n, rng)
    raise ValueError(f"noise kind {kind!r}: expected one of {NOISE_KINDS}")


def active_power(x: np.ndarray) -> float:
    active = x[np.abs(x) > 0.02 * (np.max(np.abs(x)) + 1e-9)]
    return float(np.mean(np.square(active))) if len(active) else 1e-6


def mix(speech: np.ndarray, background: np.ndarray, snr_db: float) -> np.ndarray:
    """speech + background scaled to `snr_db` below the speech's active power."""
    bg = np.resize(background, len(speech))
    p_bg = float(np.mean(np.square(bg))) + 1e-12
    return (speech + bg * np.sqrt(active_power(speech) / (p_bg * 10 ** (snr_db / 10)))
            ).astype(np.float32)


def reverb(x: np.ndarray, rng: np.random.Generator, rt60: float | None = None) -> np.ndarray:
    """A room: the direct sound plus an exponentially decaying noise tail (RT60 seconds)."""
    rt60 = float(rt60 if rt60 is not None else rng.uniform(0.15, 0.8))
    n = int(rt60 * RATE)
    t = np.arange(n) / RATE
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)  # -60 dB at rt60
    ir[: int(0.003 * RATE)] = 0.0  # first reflections arrive a few ms after the direct path
    ir *= rng.uniform(0.2, 0.6) / (np.sqrt(np.sum(ir * ir)) + 1e-12)
    ir[0] = 1.0
    y = np.convolve(x, ir)[: len(x)]
    return (y * (np.max(np.abs(x)) / (np.max(np.abs(y)) + 1e-9))).astype(np.float32)


def speed(x: np.ndarray, factor: float) -> np.ndarray:
    """Faster (> 1) and higher, as a tape: a crude other speaker."""
    return resample(x, round(RATE * factor), RATE)


def gain_db(x: np.ndarray, db: float) -> np.ndarray:
    return np.clip(x * 10 ** (db / 20), -1.0, 1.0).astype(np.float32)
