"""espeak-ng (the Debian binary): formant synthesis, offline, Mandarin and English.

One process per run of text; its WAV on stdout is read as it is produced, so the first
block is available after a few milliseconds, and killing the process is the interrupt.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import threading
from collections.abc import Iterator

import numpy as np

from gamgin_tts.backends import EngineUnavailable

BLOCK_BYTES = 4096  # ~93 ms at 22.05 kHz s16


class EspeakEngine:
    name = "espeak"
    languages = frozenset({"zh", "en"})

    def __init__(self, voice_zh: str = "cmn-latn-pinyin", voice_en: str = "en-us",
                 rate: int = 160, pitch: int = 50, binary: str = "espeak-ng") -> None:
        path = shutil.which(binary)
        if path is None:
            raise EngineUnavailable(
                f"{binary} not found on PATH; install it (Debian: apt-get install espeak-ng)")
        self.binary = path
        self.voices = {"zh": voice_zh, "en": voice_en}
        self.rate, self.pitch = int(rate), int(pitch)
        # espeak itself has no length limit; these keep a segment to a breath or two, so a
        # long sentence is not a long silence before its first audio.
        self.limits = {"zh": 60, "en": 200}
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._interrupted = False
        known = self._list_voices()
        for lang, v in self.voices.items():
            if v not in known:
                raise EngineUnavailable(
                    f"espeak-ng has no voice {v!r} for {lang}; `espeak-ng --voices` lists them")
        self.sample_rate = self._probe_rate()

    def _list_voices(self) -> set[str]:
        out = subprocess.run([self.binary, "--voices"], capture_output=True, text=True,
                             timeout=10).stdout
        names: set[str] = set()
        for line in out.splitlines()[1:]:
            cols = line.split()
            if len(cols) >= 5:
                names.add(cols[1])  # language code, e.g. cmn-latn-pinyin, en-us
                names.add(cols[4].split("/")[-1])  # file name, e.g. cmn-Latn-pinyin
        return names

    def _probe_rate(self) -> int:
        out = subprocess.run([self.binary, "-v", self.voices["en"], "--stdout", "a"],
                             capture_output=True, timeout=10).stdout
        return _parse_header(out)[0]

    def synthesize(self, text: str, lang: str) -> Iterator[np.ndarray]:
        voice = self.voices.get(lang, self.voices["en"])
        cmd = [self.binary, "-v", voice, "-s", str(self.rate), "-p", str(self.pitch),
               "-b", "1", "--stdout"]
        with self._lock:
            self._interrupted = False
            proc = self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                                                 stdout=subprocess.PIPE,
                                                 stderr=subprocess.DEVNULL)
        try:
            # text on stdin: no argument parsing, so a run starting with "-" is still text
            proc.stdin.write(text.encode("utf-8"))
            proc.stdin.close()
            header = b""
            while len(header) < 44:
                more = proc.stdout.read(44 - len(header))
                if not more:
                    break
                header += more
            if len(header) < 44 or self._interrupted:
                return
            _parse_header(header)  # validates the format
            rest = b""
            while not self._interrupted:
                data = proc.stdout.read1(BLOCK_BYTES) if hasattr(proc.stdout, "read1") \
                    else proc.stdout.read(BLOCK_BYTES)
                if not data:
                    break
                data = rest + data
                whole = len(data) // 2 * 2
                rest = data[whole:]
                if whole:
                    yield np.frombuffer(data[:whole], dtype="<i2").astype(np.float32) / 32768.0
        finally:
            with self._lock:
                self._proc = None
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()

    def interrupt(self) -> None:
        with self._lock:
            self._interrupted = True
            if self._proc is not None and self._proc.poll() is None:
                self._proc.kill()

    def close(self) -> None:
        self.interrupt()


def _parse_header(data: bytes) -> tuple[int, int]:
    """(sample rate, data offset) of espeak's streamed WAV (its sizes are placeholders)."""
    if len(data) < 44 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise EngineUnavailable("espeak-ng --stdout did not produce a WAV header")
    channels, rate = struct.unpack_from("<HI", data, 22)
    bits = struct.unpack_from("<H", data, 34)[0]
    if channels != 1 or bits != 16:
        raise EngineUnavailable(f"unexpected espeak-ng output: {channels} ch, {bits} bit")
    return rate, 44
