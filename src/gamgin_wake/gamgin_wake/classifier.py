"""A small wake-word classifier on speech-embedding frames, in numpy. No ROS, no torch.

Input: the last ``frames`` (16 = 1.3 s) 96-d embedding frames; output: the probability
that the wake word has just ended. Two ReLU layers, trained with Adam on a weighted
binary cross-entropy (``train``); the weights and what made them (recipe, seed,
operating threshold, held-back figures) live in one ``.npz``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

FORMAT = 1


class WakeClassifier:
    def __init__(self, layers: list[tuple[np.ndarray, np.ndarray]], frames: int,
                 threshold: float = 0.5, meta: dict | None = None,
                 scale: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        # per-dimension standardization of the raw embedding (from the training data)
        self.mean, self.std = scale if scale is not None else (np.zeros(96, np.float32),
                                                               np.ones(96, np.float32))
        self.mean = np.asarray(self.mean, np.float32)
        self.std = np.asarray(self.std, np.float32)
        self.layers = [(np.asarray(w, np.float32), np.asarray(b, np.float32))
                       for w, b in layers]
        self.frames = frames
        self.threshold = threshold
        self.meta = meta or {}
        if self.layers[0][0].shape[0] != frames * 96:
            raise ValueError(f"first layer takes {self.layers[0][0].shape[0]} inputs, "
                             f"not {frames} frames x 96")

    @classmethod
    def init(cls, frames: int, hidden: tuple[int, ...], rng: np.random.Generator
             ) -> WakeClassifier:
        sizes = [frames * 96, *hidden, 1]
        layers = [(rng.standard_normal((a, b)).astype(np.float32) * np.sqrt(2.0 / a),
                   np.zeros(b, np.float32)) for a, b in itertools.pairwise(sizes)]
        return cls(layers, frames)

    def standardize(self, x: np.ndarray) -> np.ndarray:
        """(n, frames, 96) or (n, frames*96) embeddings -> (n, frames*96) network inputs."""
        h = np.asarray(x, np.float32).reshape(len(x), -1, 96)
        return ((h - self.mean) / self.std).reshape(len(x), -1)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """(n, frames, 96) or (n, frames*96) embeddings -> (n,) logits."""
        h = self.standardize(x)
        for i, (w, b) in enumerate(self.layers):
            h = h @ w + b
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        return h[:, 0]

    def score(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-np.clip(self.logits(x), -30, 30)))

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path) -> None:
        arrays = {}
        for i, (w, b) in enumerate(self.layers):
            arrays[f"w{i}"] = w.astype(np.float16)  # half the file; scores move < 1e-3
            arrays[f"b{i}"] = b
        arrays["mean"], arrays["std"] = self.mean, self.std
        meta = {**self.meta, "format": FORMAT, "frames": self.frames,
                "threshold": self.threshold, "n_layers": len(self.layers)}
        tmp = Path(str(path) + ".tmp.npz")
        np.savez_compressed(tmp, meta=np.array(json.dumps(meta, ensure_ascii=False)), **arrays)
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> WakeClassifier:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"wake model {p} not found (`gamgin wake train` makes one)")
        try:
            with np.load(p, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                if meta.get("format") != FORMAT:
                    raise ValueError(f"format {meta.get('format')}, expected {FORMAT}")
                layers = [(z[f"w{i}"], z[f"b{i}"]) for i in range(int(meta["n_layers"]))]
                scale = (z["mean"], z["std"])
        except (OSError, KeyError, ValueError) as exc:
            raise ValueError(f"wake model {p} is not a gamgin wake model ({exc})") from exc
        return cls(layers, int(meta["frames"]), float(meta["threshold"]), meta, scale)


def train(model: WakeClassifier, x: np.ndarray, y: np.ndarray, weight: np.ndarray,
          epochs: int, rng: np.random.Generator, lr: float = 1e-3, batch: int = 512,
          l2: float = 1e-4, input_noise: float = 0.0, dropout: float = 0.0,
          log: Callable[[str], None] = print) -> None:
    """Adam on weighted BCE. x: (n, frames*96) embeddings, y: (n,) 0/1, weight: (n,).
    ``input_noise`` (std, on standardized inputs) and ``dropout`` (hidden units) fight
    memorizing: clips of one synthetic voice give many near-identical windows."""
    params = [p for layer in model.layers for p in layer]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    b1, b2, eps, step = 0.9, 0.999, 1e-8, 0
    n = len(x)
    for epoch in range(epochs):
        order = rng.permutation(n)
        total = 0.0
        rate = lr * (0.5 * (1 + np.cos(np.pi * epoch / epochs)))  # cosine decay
        for s in range(0, n, batch):
            idx = order[s: s + batch]
            xb, yb, wb = model.standardize(x[idx]), y[idx], weight[idx]  # x may be float16
            if input_noise:
                xb = xb + rng.standard_normal(xb.shape, dtype=np.float32) * input_noise
            # forward, keeping activations (and dropout masks)
            acts = [xb]
            masks: list[np.ndarray | None] = []
            h = xb
            for i, (w, b) in enumerate(model.layers):
                h = h @ w + b
                mask = None
                if i < len(model.layers) - 1:
                    h = np.maximum(h, 0.0)
                    if dropout:
                        mask = (rng.random(h.shape, dtype=np.float32) >= dropout) / (1 - dropout)
                        h = h * mask
                masks.append(mask)
                acts.append(h)
            z = h[:, 0]
            p = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
            wsum = float(wb.sum()) + 1e-9
            total += float(np.sum(wb * (np.logaddexp(0, z) - yb * z)))
            grad = ((p - yb) * wb / wsum)[:, None].astype(np.float32)
            grads: list[np.ndarray] = []
            for i in range(len(model.layers) - 1, -1, -1):
                w, _ = model.layers[i]
                gw = acts[i].T @ grad + l2 * w
                gb = grad.sum(axis=0)
                grads = [gw, gb, *grads]
                if i:
                    grad = (grad @ w.T) * (acts[i] > 0)
                    if masks[i - 1] is not None:
                        grad = grad * masks[i - 1]
            step += 1
            for j, (p_, g) in enumerate(zip(params, grads, strict=True)):
                m[j] = b1 * m[j] + (1 - b1) * g
                v[j] = b2 * v[j] + (1 - b2) * g * g
                mh = m[j] / (1 - b1 ** step)
                vh = v[j] / (1 - b2 ** step)
                p_ -= (rate * mh / (np.sqrt(vh) + eps)).astype(np.float32)
        log(f"  epoch {epoch + 1}/{epochs}: loss {total / float(weight.sum()):.4f}")
