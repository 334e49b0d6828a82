"""A remote Wyoming speech-to-text service as a recognizer (``backend: wyoming``).

Each ``recognize`` is one Wyoming request (transcribe, audio-start, chunks, audio-stop ->
transcript) on a fresh connection, bounded by ``timeout_s``. When the service is away
(refused, reset, silent past the timeout) the local ``fallback`` backend transcribes
instead — loaded on the first failure, so a robot whose STT runs on a bigger box does not
hold a second Whisper in memory for nothing — and the remote is tried again after
``RETRY_S``. Without a fallback the failure is ``RecognizerUnavailable``: the core then
ends the turn with an empty final, which the dialogue answers with "I didn't catch that".
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from gamgin_common.wyoming_client import WyomingUnavailable, parse_uri, transcribe
from gamgin_stt.backends import (
    Recognition,
    Recognizer,
    RecognizerConfig,
    RecognizerUnavailable,
    load_recognizer,
)
from gamgin_stt.text import has_cjk, to_simplified
from gamgin_stt.vad import SAMPLE_RATE

RETRY_S = 10.0  # after a failure the remote is skipped this long: one turn pays one timeout
_log = logging.getLogger("gamgin_stt.wyoming")


class WyomingRecognizer:
    name = "wyoming"

    def __init__(self, cfg: RecognizerConfig) -> None:
        parse_uri(cfg.uri)  # a malformed uri is a configuration error, now
        self.cfg = cfg
        self.path = cfg.uri  # what health shows as the model
        self.prior_language = ""
        self.fallback: Recognizer | None = None
        self.last_error = ""
        self.remote_failures = 0
        self._away_until = 0.0
        self._lock = threading.Lock()
        self._inflight: list = []

    def recognize(self, samples: np.ndarray, final: bool, language: str | None = None
                  ) -> Recognition:
        if time.monotonic() >= self._away_until:
            try:
                return self._remote(samples, language)
            except WyomingUnavailable as exc:
                self.remote_failures += 1
                self.last_error = str(exc)
                self._away_until = time.monotonic() + RETRY_S
                _log.warning("wyoming stt: %s; %s for %.0f s", exc,
                             f"{self.cfg.fallback} transcribes" if self.cfg.fallback
                             else "no fallback", RETRY_S)
        local = self._fallback()
        if local is None and not final:
            # a partial has nobody to ask: nothing to show (the final says why, once)
            return Recognition("", language or "", -10.0, 1.0, 0.0)
        if local is None:
            raise RecognizerUnavailable(f"speech recognition service away ({self.last_error})")
        if hasattr(local, "prior_language"):
            local.prior_language = self.prior_language
        return local.recognize(samples, final, language)

    def _remote(self, samples: np.ndarray, language: str | None) -> Recognition:
        t0 = time.perf_counter()
        lang = language or (self.cfg.language if self.cfg.language != "auto" else None)
        with self._lock:  # one request at a time; close() aborts the one in flight
            self._inflight = []
            result = transcribe(self.cfg.uri, samples, SAMPLE_RATE, lang, self.cfg.timeout_s,
                                conn_box=self._inflight)
        text = to_simplified(result.text.strip())
        detected = (result.language or lang or ("zh" if has_cjk(text) else "en"))[:2].lower()
        # Wyoming carries no confidences: a transcript the service stands behind counts
        # as certain, and only empty text is discarded by the core.
        return Recognition(text=text, language=detected, avg_logprob=0.0, no_speech_prob=0.0,
                           compute_s=time.perf_counter() - t0)

    def _fallback(self) -> Recognizer | None:
        if self.fallback is None and self.cfg.fallback:
            t0 = time.monotonic()
            self.fallback = load_recognizer(self.cfg.fallback, self.cfg)
            _log.warning("wyoming stt: local %s loaded in %.1f s as the fallback",
                         self.cfg.fallback, time.monotonic() - t0)
        return self.fallback

    def close(self) -> None:
        for conn in list(self._inflight):
            conn.close()
        if self.fallback is not None:
            self.fallback.close()
