"""Any sentence-transformers model (e.g. a multilingual one such as bge-m3 or
paraphrase-multilingual-MiniLM-L12-v2) for robots with torch installed and, optionally, a
GPU. Offline: the model is a local dir (by path or under models/), never a hub name."""

from __future__ import annotations

import os

import numpy as np

from gamgin_common.paths import resolve_model


class STEmbedder:
    def __init__(self, model: str = "", device: str = "", batch_size: int = 16) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a hub lookup can only hang here
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise RuntimeError("embedder 'sentence_transformers' needs `pip install torch "
                               "sentence-transformers`; or use embedder 'minilm'") from exc
        if not model:
            from gamgin_knowledge.backends.minilm import find_model_dir

            path = find_model_dir("")
        else:
            path = resolve_model(model)
        if not path.exists():
            raise FileNotFoundError(f"sentence-transformers model dir {path} does not exist")
        self.model = SentenceTransformer(str(path), device=device or None)
        self.dim = int(self.model.get_sentence_embedding_dimension())
        base = "all-MiniLM-L6-v2" if path.name == "model" else path.name
        self.name = f"st:{base}:{self.dim}"
        self.batch_size = batch_size

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        v = self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                              convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(v, dtype=np.float32)
