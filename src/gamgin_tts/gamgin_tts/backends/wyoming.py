"""A remote Wyoming text-to-speech service as an engine (``engine: wyoming``).

Home Assistant's ``wyoming-piper`` on a bigger box, or another gamgin's ``gamgin wyoming
--tts``. At load the service is asked what it speaks (``describe``) and synthesizes a word,
which gives its sample rate; a service away at load is ``EngineUnavailable`` (the node then
speaks with espeak, WARN). Later, a service that is gone or silent past ``timeout_s`` raises
``EngineUnavailable`` from ``synthesize``: the streamer gives that run to its fallback
engine, so the answer is still spoken.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np

from gamgin_common.wyoming_client import WyomingUnavailable, describe, parse_uri, synthesize
from gamgin_tts.backends import EngineUnavailable

RETRY_S = 10.0  # after a failure the service is not asked again this long: one timeout a turn


def voice_languages(info, voice: str = "") -> frozenset[str]:
    """The gamgin languages ("zh", "en") the service's named voice speaks; without a name,
    those of its installed voices (wyoming-piper also lists the voices it could download)."""
    voices = [v for program in info.tts for v in program.voices]
    chosen = ([v for v in voices if v.name == voice] if voice
              else [v for v in voices if v.installed] or voices)
    langs = {code[:2].lower() for v in chosen for code in v.languages}
    return frozenset(langs & {"zh", "en"})


class WyomingEngine:
    name = "wyoming"

    def __init__(self, uri: str = "tcp://127.0.0.1:10200", voice: str = "",
                 timeout_s: float = 10.0) -> None:
        try:
            parse_uri(uri)
        except ValueError as exc:
            raise EngineUnavailable(str(exc)) from exc
        self.uri, self.voice, self.timeout_s = uri, voice, timeout_s
        try:
            info = describe(uri, min(timeout_s, 3.0))
            self.languages = voice_languages(info, voice)
            if not self.languages:
                which = f"voice {voice!r}" if voice else "voice"
                raise EngineUnavailable(f"the Wyoming TTS at {uri} has no {which} speaking zh "
                                        f"or en; set wyoming_voice to one it lists")
            probe = "好" if "zh" in self.languages and "en" not in self.languages else "OK."
            rates = [rate for rate, _ in synthesize(uri, probe, voice, timeout_s)]
        except WyomingUnavailable as exc:
            raise EngineUnavailable(f"Wyoming TTS service away: {exc}") from exc
        if not rates:
            raise EngineUnavailable(f"the Wyoming TTS at {uri} returned no audio for a test word")
        self.sample_rate = rates[0]
        # the service cuts sentences itself; long inputs only delay the first audio
        self.limits = {lang: 300 for lang in self.languages}
        self._inflight: list = []
        self._interrupted = threading.Event()
        self._away_until = 0.0
        self._away_reason = ""

    def synthesize(self, text: str, lang: str) -> Iterator[np.ndarray]:
        if time.monotonic() < self._away_until:
            raise EngineUnavailable(f"Wyoming TTS service away: {self._away_reason}")
        self._interrupted.clear()
        self._inflight = []
        resampler = None
        try:
            for rate, block in synthesize(self.uri, text, self.voice, self.timeout_s,
                                          conn_box=self._inflight):
                if self._interrupted.is_set():
                    return
                if rate != self.sample_rate:  # a voice change on the server
                    if resampler is None:
                        from gamgin_common.audio import Resampler

                        resampler = Resampler(rate, self.sample_rate)
                    block = resampler(block)
                yield block
        except WyomingUnavailable as exc:
            if self._interrupted.is_set():
                return
            self._away_until, self._away_reason = time.monotonic() + RETRY_S, str(exc)
            raise EngineUnavailable(f"Wyoming TTS service away: {exc}") from exc

    def interrupt(self) -> None:
        self._interrupted.set()
        for conn in list(self._inflight):
            conn.close()

    def close(self) -> None:
        self.interrupt()
