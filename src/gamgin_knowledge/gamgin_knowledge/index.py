"""The on-disk knowledge index. Pure Python (numpy, faiss, bm25s, jieba).

Layout under ``root`` (default ``data_dir()/knowledge``)::

    CURRENT              name of the live generation (replaced atomically)
    gen-<ns>/            one complete, immutable generation
        meta.json        embedder name and dim, counts
        files.json       path -> {sha256, bytes, pages, chunks, added}
        chunks.jsonl     one passage per line: text, file, page, tokens, flagged lines
        vectors.faiss    FAISS IndexFlatIP over L2-normalised vectors (row i = chunk i)
    .lock                writers take it (flock): the CLI and the node may both ingest

A write builds the next generation in ``.tmp-*`` and renames it, then swaps CURRENT with
os.replace: a crash or Ctrl-C at any point leaves the previous generation live and whole.
Readers notice a new CURRENT on their next query (hot reload, no restart).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import faiss
import numpy as np

FORMAT = 1


@dataclass
class StoredChunk:
    text: str  # sanitized: instruction-like sentences removed
    file: str  # absolute path, or "builtin:<name>" for package data
    name: str  # what is spoken ("护照.pdf")
    page: int  # 1-based PDF page; 0 without pages
    ordinal: int
    tokens: list[str] = field(default_factory=list)  # BM25 terms
    flagged: list[str] = field(default_factory=list)  # removed instruction-like sentences


@dataclass
class Generation:
    """One loaded, immutable generation."""

    name: str
    embedder: str
    dim: int
    files: dict[str, dict]
    chunks: list[StoredChunk]
    index: faiss.Index

    def vectors_of(self, file: str) -> tuple[list[StoredChunk], np.ndarray]:
        rows = [i for i, c in enumerate(self.chunks) if c.file == file]
        if not rows:
            return [], np.zeros((0, self.dim), np.float32)
        vecs = np.vstack([self.index.reconstruct(i) for i in rows]).astype(np.float32)
        return [self.chunks[i] for i in rows], vecs


def default_root() -> Path:
    from gamgin_common.paths import data_dir

    return data_dir() / "knowledge"


class IndexStore:
    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root else default_root()

    # ------------------------------------------------------------------ reading
    def current_name(self) -> str | None:
        try:
            name = (self.root / "CURRENT").read_text().strip()
        except FileNotFoundError:
            return None
        return name or None

    def load(self, dim: int | None = None, embedder: str = "") -> Generation:
        """The live generation (empty when none exists yet). A writer may delete an old
        generation right after swapping CURRENT: read CURRENT again and retry."""
        for _ in range(5):
            name = self.current_name()
            if name is None:
                return Generation("", embedder, dim or 0, {}, [], faiss.IndexFlatIP(dim or 1))
            try:
                return self._load_gen(name)
            except FileNotFoundError:
                time.sleep(0.05)
        raise RuntimeError(f"knowledge index at {self.root} keeps changing under the reader")

    def _load_gen(self, name: str) -> Generation:
        d = self.root / name
        meta = json.loads((d / "meta.json").read_text())
        if meta.get("format") != FORMAT:
            raise RuntimeError(f"index format {meta.get('format')} at {d} is not {FORMAT}: "
                               "delete the folder and ingest again")
        files = json.loads((d / "files.json").read_text())
        with open(d / "chunks.jsonl", encoding="utf-8") as f:
            chunks = [StoredChunk(**json.loads(line)) for line in f if line.strip()]
        index = faiss.read_index(str(d / "vectors.faiss"))
        if index.ntotal != len(chunks):
            raise RuntimeError(f"index {d} is inconsistent ({index.ntotal} vectors, "
                               f"{len(chunks)} chunks): delete it and ingest again")
        return Generation(name, meta["embedder"], int(meta["dim"]), files, chunks, index)

    # ------------------------------------------------------------------ writing
    @contextmanager
    def writing(self):
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self._clean_leftovers()
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _clean_leftovers(self) -> None:
        """Half-written generations of an interrupted ingest, and superseded ones."""
        live = self.current_name()
        for d in self.root.iterdir():
            if d.name.startswith(".tmp-") or (d.name.startswith("gen-") and d.name != live):
                shutil.rmtree(d, ignore_errors=True)

    def commit(self, embedder: str, dim: int, files: dict[str, dict],
               chunks: list[StoredChunk], vectors: np.ndarray) -> str:
        """Write a new generation and make it live. Call inside ``writing()``."""
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        name = f"gen-{time.time_ns()}"
        tmp = self.root / f".tmp-{name}"
        tmp.mkdir(parents=True)
        index = faiss.IndexFlatIP(dim)
        if len(vectors):
            index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        faiss.write_index(index, str(tmp / "vectors.faiss"))
        with open(tmp / "chunks.jsonl", "w", encoding="utf-8") as f:
            for c in chunks:
                f.write(json.dumps(asdict(c), ensure_ascii=False) + "\n")
        (tmp / "files.json").write_text(json.dumps(files, ensure_ascii=False, indent=1))
        (tmp / "meta.json").write_text(json.dumps(
            {"format": FORMAT, "embedder": embedder, "dim": dim, "chunks": len(chunks),
             "files": len(files), "created": time.time()}))
        for p in tmp.iterdir():
            _fsync(p)
        os.rename(tmp, self.root / name)
        cur_tmp = self.root / ".tmp-CURRENT"
        cur_tmp.write_text(name + "\n")
        _fsync(cur_tmp)
        os.replace(cur_tmp, self.root / "CURRENT")
        _fsync(self.root)
        self._clean_leftovers()
        return name


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
