"""Enrolled wake-word templates on disk: <data_dir>/wake/<keyword>/*.wav (+ enrollment.json).

Templates are kept as audio (16 kHz mono, silence trimmed), not as features, so a
different or retrained embedding model can use the same enrollment. No ROS.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from gamgin_common.audio import resample
from gamgin_common.paths import data_dir
from gamgin_wake.embedding import RATE, trim_silence

MIN_WORD_S = 0.25  # shorter than this after trimming: a click, not a word
MAX_WORD_S = 2.5  # longer: a sentence, or silence was not trimmed (noisy room)


class EnrollmentError(ValueError):
    """A recording or folder that cannot be used; the message says why and what to do."""


def keyword_dir(keyword: str, root: Path | None = None) -> Path:
    safe = "".join("_" if c in '/\\:*?"<>|' else c for c in keyword.strip())
    if not safe:
        raise EnrollmentError("empty keyword")
    return (root or data_dir()) / "wake" / safe


def prepare_take(samples: np.ndarray, rate: int, name: str = "take") -> np.ndarray:
    """Resample to 16 kHz, trim silence, check the length; raise EnrollmentError if unusable."""
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim > 1:
        x = x.mean(axis=1)
    if not np.all(np.isfinite(x)) or len(x) == 0:
        raise EnrollmentError(f"{name}: empty or invalid audio")
    x = resample(x, rate, RATE)
    peak = float(np.max(np.abs(x)))
    if peak < 0.01:
        raise EnrollmentError(f"{name}: silent (peak {peak:.4f}); check the microphone/gain")
    word = trim_silence(x)
    dur = len(word) / RATE
    if not MIN_WORD_S <= dur <= MAX_WORD_S:
        raise EnrollmentError(
            f"{name}: {dur:.2f} s of sound after trimming silence; say only the wake word, "
            f"{MIN_WORD_S}-{MAX_WORD_S} s, in a quiet room")
    return word


def save_templates(keyword: str, takes: list[np.ndarray], source: str,
                   root: Path | None = None, min_takes: int = 3) -> Path:
    """Replace the keyword's enrollment with `takes` (already prepared, 16 kHz)."""
    if len(takes) < min_takes:
        raise EnrollmentError(f"{len(takes)} usable recording(s); need at least {min_takes}")
    folder = keyword_dir(keyword, root)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.wav"):
        old.unlink()
    for i, take in enumerate(takes):
        sf.write(folder / f"take{i:02d}.wav", take, RATE, subtype="PCM_16")
    meta = {"keyword": keyword, "source": source, "takes": len(takes), "rate": RATE,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (folder / "enrollment.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2))
    return folder


def load_templates(keyword: str, root: Path | None = None,
                   folder: Path | None = None) -> list[np.ndarray]:
    folder = folder or keyword_dir(keyword, root)
    files = sorted(folder.glob("*.wav")) if folder.is_dir() else []
    if not files:
        raise EnrollmentError(
            f"no enrollment for wake word {keyword!r} in {folder}: run `gamgin wake enroll "
            f"--mic` (or --wav a.wav b.wav c.wav, or --default for the synthesized one)")
    out = []
    for f in files:
        x, rate = sf.read(f, dtype="float32", always_2d=False)
        out.append(prepare_take(x, rate, f.name))
    return out
