"""Local music: a library folder and a player that feeds an audio callback. No ROS.

The player decodes ahead in a background thread (soundfile: wav/flac/ogg/mp3), resamples
to the output rate (soxr via gamgin_common.audio) and hands out blocks from a small
buffer, so the real-time callback never touches the disk. Ducking is a smooth gain ramp.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from gamgin_common.audio import Resampler

EXTENSIONS = {".wav", ".flac", ".ogg", ".mp3"}


@dataclass(frozen=True)
class Track:
    path: Path
    title: str
    artist: str

    def label(self) -> str:
        return f"{self.artist} - {self.title}" if self.artist else self.title


def read_track(path: Path, root: Path) -> Track:
    """Title/artist from the file's tags, else "Artist - Title.ext", else the folder name."""
    title = artist = ""
    try:
        with sf.SoundFile(str(path)) as f:
            meta = f.copy_metadata()
        title, artist = meta.get("title", "").strip(), meta.get("artist", "").strip()
    except (RuntimeError, sf.LibsndfileError):
        pass
    stem = path.stem
    if " - " in stem:
        a, t = stem.split(" - ", 1)
        artist, title = artist or a.strip(), title or t.strip()
    if not artist and path.parent != root:
        artist = path.parent.name
    return Track(path, title or stem, artist)


class MusicLibrary:
    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder).expanduser()
        self.tracks: list[Track] = []
        self.rescan()

    def rescan(self) -> None:
        if not self.folder.is_dir():
            self.tracks = []
            return
        files = sorted(p for p in self.folder.rglob("*") if p.suffix.lower() in EXTENSIONS)
        self.tracks = [read_track(p, self.folder) for p in files]

    def search(self, query: str) -> list[Track]:
        """Tracks whose artist or title contains the query (all tracks for an empty one);
        artist matches first, as in "放一首周杰伦的歌"."""
        q = _norm(query)
        if not q:
            return list(self.tracks)
        by_artist = [t for t in self.tracks if q in _norm(t.artist) or (_norm(t.artist) and
                     _norm(t.artist) in q)]
        by_title = [t for t in self.tracks if t not in by_artist and (
            q in _norm(t.title) or (_norm(t.title) and _norm(t.title) in q))]
        return by_artist + by_title


def _norm(s: str) -> str:
    return re.sub(r"[\s\W_]+", "", s.lower())


class MusicPlayer:
    """play / pause / resume / stop / next / previous; ``read(frames)`` from the audio thread."""

    def __init__(self, library: MusicLibrary, out_rate: int, volume: float = 0.8,
                 duck_gain: float = 0.2, ramp_ms: float = 80.0, buffer_s: float = 1.0) -> None:
        self.library, self.out_rate = library, out_rate
        self.volume, self.duck_gain = volume, duck_gain
        self.state = "stopped"  # "playing" | "paused" | "stopped"
        self.playlist: list[Track] = []
        self.index = 0
        self._gain = 1.0
        self._ducked = False
        self._ramp = 1.0 / max(1.0, ramp_ms * out_rate / 1000.0)  # gain change per sample
        self._buffer: deque[np.ndarray] = deque()
        self._buffered = 0
        self._max_buffered = int(buffer_s * out_rate)
        self._lock = threading.Condition()
        self._gen = 0  # bumps on every track change: the decoder drops stale audio
        self._closed = False
        self._decoder = threading.Thread(target=self._decode_loop, daemon=True,
                                         name="music-decoder")
        self._decoder.start()

    # ------------------------------------------------------------------ commands
    def command(self, cmd: str, query: str = "") -> str:
        """Apply a command; returns a short status for logs and music/state."""
        with self._lock:
            if cmd == "play":
                found = self.library.search(query)
                if not found:
                    self._stop()
                    return f"nothing found for {query!r}" if query else "music library is empty"
                self.playlist, self.index = found, 0
                self._start_track()
            elif cmd == "pause" and self.state == "playing":
                self.state = "paused"
            elif cmd == "resume" and self.state == "paused":
                self.state = "playing"
            elif cmd == "stop":
                self._stop()
            elif cmd in ("next", "previous") and self.playlist:
                step = 1 if cmd == "next" else -1
                self.index = (self.index + step) % len(self.playlist)
                self._start_track()
            elif cmd not in ("pause", "resume", "next", "previous"):
                raise ValueError(f"unknown music command {cmd!r}")
            self._lock.notify_all()
            return self.describe()

    def duck(self, on: bool) -> None:
        self._ducked = bool(on)

    def describe(self) -> str:
        cur = self.current
        return f"{self.state}" + (f": {cur.label()}" if cur and self.state != "stopped" else "")

    @property
    def current(self) -> Track | None:
        return self.playlist[self.index] if self.playlist else None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        self._decoder.join(2)

    def _start_track(self) -> None:
        self._gen += 1
        self._buffer.clear()
        self._buffered = 0
        self.state = "playing"

    def _stop(self) -> None:
        self._gen += 1
        self._buffer.clear()
        self._buffered = 0
        self.state = "stopped"

    # ------------------------------------------------------------------ audio thread
    def read(self, frames: int) -> np.ndarray:
        out = np.zeros(frames, dtype=np.float32)
        with self._lock:
            if self.state != "playing":
                return out
            filled = 0
            while filled < frames and self._buffer:
                block = self._buffer[0]
                n = min(frames - filled, len(block))
                out[filled:filled + n] = block[:n]
                if n == len(block):
                    self._buffer.popleft()
                else:
                    self._buffer[0] = block[n:]
                filled += n
            self._buffered -= filled
            self._lock.notify_all()
        target = self.duck_gain if self._ducked else 1.0
        steps = np.arange(1, frames + 1, dtype=np.float32) * self._ramp
        gain = (np.minimum(self._gain + steps, target) if target >= self._gain
                else np.maximum(self._gain - steps, target))
        self._gain = float(gain[-1])
        return out * gain * self.volume

    # ------------------------------------------------------------------ decoder thread
    def _decode_loop(self) -> None:
        f: sf.SoundFile | None = None
        gen = -1
        rs: Resampler | None = None
        while True:
            with self._lock:
                while not self._closed and (self.state == "stopped" or (
                        gen == self._gen and self._buffered >= self._max_buffered)):
                    self._lock.wait(0.5)
                if self._closed:
                    break
                if gen != self._gen:  # a new track: (re)open
                    if f is not None:
                        f.close()
                    gen, track = self._gen, self.current
                    try:
                        f = sf.SoundFile(str(track.path))
                        rs = Resampler(f.samplerate, self.out_rate)
                    except (RuntimeError, sf.LibsndfileError):
                        f = None  # unreadable file: skip to the next one
            if f is None:
                self._advance(gen)
                continue
            block = f.read(f.samplerate // 10, dtype="float32", always_2d=True)
            last = len(block) < f.samplerate // 10
            samples = rs(block.mean(axis=1), last=last) if len(block) else np.zeros(0, "f4")
            with self._lock:
                if gen == self._gen and len(samples):
                    self._buffer.append(samples.astype(np.float32, copy=False))
                    self._buffered += len(samples)
            if last:
                self._advance(gen)
        if f is not None:
            f.close()

    def _advance(self, gen: int) -> None:
        """End of a track: the next one, or stop after the last (after the buffer drains)."""
        with self._lock:
            if gen != self._gen:
                return
            while self._buffered > 0 and gen == self._gen and not self._closed:
                self._lock.wait(0.2)
            if gen != self._gen:
                return
            if self.index + 1 < len(self.playlist):
                self.index += 1
                self._start_track()
            else:
                self._stop()
