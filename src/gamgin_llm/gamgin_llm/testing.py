"""Test helpers for the LLM stage: a real llama.cpp server on loopback. Used by this
package's tests and by whole-graph tests that take the server away and bring it back."""

from __future__ import annotations

import socket
import subprocess
import sys

from gamgin_common.paths import models_dir
from gamgin_common.testing import wait_for

# plumbing tests (streaming, cancellation, tools over ROS, servers) run on the 135M model:
# prefill ~4x faster than Qwen2.5-0.5B on 2 cores. What the product must say is tested on
# QWEN, the default model.
MODEL = models_dir() / "smollm2-135m-instruct.gguf"
QWEN = models_dir() / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """A real `python -m llama_cpp.server` with the packaged model on loopback."""

    def __init__(self, *extra_args: str) -> None:
        self.extra_args = list(extra_args)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.proc: subprocess.Popen | None = None

    def start(self) -> LlamaServer:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(MODEL), "--host",
             "127.0.0.1", "--port", str(self.port), "--n_ctx", "2048", "--n_threads", "2",
             *self.extra_args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        import httpx2

        def up() -> bool:
            try:
                return httpx2.get(f"{self.url}/models", timeout=1.0).status_code == 200
            except httpx2.HTTPError:
                return False

        if not wait_for(up, 60, 0.3):
            self.stop()
            raise RuntimeError("llama_cpp.server did not come up")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
