"""A blocking Wyoming client for the stage backends that call a remote service. No ROS.

The stages' workers are plain threads (the STT worker, the TTS streamer), so a request is a
blocking socket with a deadline rather than an asyncio client: no event loop per call, and
``close()`` from another thread aborts a request at once (a cancelled turn). The events
themselves are the ``wyoming`` library's, so the framing is exactly what Home Assistant's
services speak.

Every failure (refused, reset, timed out, an ``error`` event, a malformed reply) is a
``WyomingUnavailable`` whose message names the URI: callers turn it into their fallback.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlparse

import numpy as np
from wyoming.asr import Transcribe, Transcript, TranscriptChunk
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event, read_event, write_event
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize, SynthesizeVoice

SAMPLES_PER_CHUNK = 1024  # what Home Assistant and the rhasspy servers send


class WyomingUnavailable(RuntimeError):
    """The service cannot be reached or did not answer in time; the message says which."""


def parse_uri(uri: str) -> tuple[str, int]:
    """``tcp://host:port`` -> (host, port); anything else is a ValueError with the fix."""
    p = urlparse(uri)
    if p.scheme != "tcp" or not p.hostname or p.port is None:
        raise ValueError(f"Wyoming uri {uri!r} must look like tcp://HOST:PORT "
                         f"(e.g. tcp://127.0.0.1:10300)")
    return p.hostname, p.port


class Connection:
    """One request on one TCP connection (Wyoming servers handle one stream at a time per
    connection, and a fresh connection after a failure is simplest)."""

    def __init__(self, uri: str, timeout_s: float, connect_timeout_s: float = 2.0) -> None:
        self.uri = uri
        self.deadline = time.monotonic() + timeout_s
        host, port = parse_uri(uri)
        self._closed = threading.Event()
        try:
            self.sock = socket.create_connection((host, port), min(connect_timeout_s, timeout_s))
        except OSError as exc:
            raise WyomingUnavailable(f"cannot connect to {uri}: {exc}") from exc
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.file = self.sock.makefile("rwb")

    def send(self, *events: Event) -> None:
        self._arm()
        try:
            for ev in events:
                write_event(ev, self.file)
        except OSError as exc:
            raise self._failure("sending to", exc) from exc

    def receive(self) -> Event:
        """The next event; ``error`` events and a closed connection raise."""
        self._arm()
        try:
            ev = read_event(self.file)
        except OSError as exc:
            raise self._failure("reading from", exc) from exc
        if ev is None:
            raise WyomingUnavailable(
                "aborted" if self._closed.is_set() else f"{self.uri} closed the connection")
        if Error.is_type(ev.type):
            err = Error.from_event(ev)
            raise WyomingUnavailable(f"{self.uri} answered an error: {err.text} ({err.code})")
        return ev

    def close(self) -> None:
        """Safe from any thread: a blocked ``receive`` returns at once."""
        self._closed.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def _arm(self) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise WyomingUnavailable(f"{self.uri} did not answer in time")
        self.sock.settimeout(left)

    def _failure(self, what: str, exc: OSError) -> WyomingUnavailable:
        if self._closed.is_set():
            return WyomingUnavailable("aborted")
        if isinstance(exc, TimeoutError | socket.timeout):
            return WyomingUnavailable(f"{self.uri} did not answer in time")
        return WyomingUnavailable(f"{what} {self.uri} failed: {exc}")

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def describe(uri: str, timeout_s: float = 2.0) -> Info:
    with Connection(uri, timeout_s) as conn:
        conn.send(Describe().event())
        while True:
            ev = conn.receive()
            if Info.is_type(ev.type):
                return Info.from_event(ev)


def pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def audio_events(samples: np.ndarray, rate: int) -> list[Event]:
    """AudioStart, AudioChunk*, AudioStop for float32 mono samples."""
    data = pcm16(samples)
    step = SAMPLES_PER_CHUNK * 2
    chunks = [AudioChunk(rate=rate, width=2, channels=1, audio=data[i:i + step]).event()
              for i in range(0, len(data), step)]
    return [AudioStart(rate=rate, width=2, channels=1).event(), *chunks, AudioStop().event()]


def transcribe(uri: str, samples: np.ndarray, rate: int = 16000, language: str | None = None,
               timeout_s: float = 10.0, conn_box: list | None = None) -> Transcript:
    """One utterance -> its transcript. Streamed transcript chunks, where the server sends
    them, are joined when the final ``transcript`` event is empty."""
    with Connection(uri, timeout_s) as conn:
        if conn_box is not None:
            conn_box.append(conn)  # lets another thread abort the request
        conn.send(Transcribe(language=language).event(), *audio_events(samples, rate))
        pieces: list[str] = []
        while True:
            ev = conn.receive()
            if TranscriptChunk.is_type(ev.type):
                pieces.append(TranscriptChunk.from_event(ev).text)
            elif Transcript.is_type(ev.type):
                t = Transcript.from_event(ev)
                if not t.text and pieces:
                    t.text = "".join(pieces)
                return t


def synthesize(uri: str, text: str, voice: str = "", timeout_s: float = 10.0,
               conn_box: list | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Text -> (rate, float32 mono block) as the server sends them."""
    with Connection(uri, timeout_s) as conn:
        if conn_box is not None:
            conn_box.append(conn)
        conn.send(Synthesize(text=text, voice=SynthesizeVoice(name=voice) if voice else None)
                  .event())
        while True:
            ev = conn.receive()
            if AudioChunk.is_type(ev.type):
                chunk = AudioChunk.from_event(ev)
                if chunk.width != 2:
                    raise WyomingUnavailable(f"{uri} sent {chunk.width * 8}-bit audio; "
                                             f"only 16-bit PCM is understood")
                x = np.frombuffer(chunk.audio, "<i2").astype(np.float32) / 32768.0
                if chunk.channels > 1:
                    x = x.reshape(-1, chunk.channels).mean(axis=1)
                yield chunk.rate, x
            elif AudioStop.is_type(ev.type):
                return
