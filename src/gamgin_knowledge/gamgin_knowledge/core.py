"""Ingest and search: the knowledge base without ROS. Pure Python.

``KnowledgeBase.add`` reads, chunks, sanitizes and embeds files into a new index
generation (unchanged files, by SHA-256 of their bytes, are carried over without being
read again); ``KnowledgeBase.search`` fuses FAISS dense ranks and BM25 (jieba) ranks with
reciprocal rank fusion.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import math
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from gamgin_common.paths import file_sha256
from gamgin_knowledge.chunking import SentenceChunker
from gamgin_knowledge.guard import sanitize
from gamgin_knowledge.index import ChunkStore, Generation, IndexStore, StoredChunk
from gamgin_knowledge.ingest import SUPPORTED, Limits, Page, SkipFile, read_document
from gamgin_knowledge.text import detect_lang, lexical_tokens

BUILTIN = "builtin:"
JOKE_FILES = ("jokes-zh.md", "jokes-en.md")
RRF_K = 60  # the constant of Cormack et al.; ranks past ~20 then barely matter


@dataclass
class Passage:
    """One retrieved chunk. ``text``/``source``/``score`` match gamgin_llm.router.Passage."""

    text: str
    source: str  # file name to speak ("护照.pdf"); "" for built-in collections
    page: int = 0  # 1-based PDF page, 0 when the file has no pages
    score: float = 0.0  # fused RRF score, higher is better
    path: str = ""  # full path (or builtin:<name>)
    dense: float = 0.0  # cosine similarity to the query
    bm25: float = 0.0
    flagged: list[str] = field(default_factory=list)  # instruction-like lines removed


@dataclass
class FileResult:
    path: str
    status: str  # added | updated | unchanged | skipped | removed
    reason: str = ""
    pages: int = 0
    chunks: int = 0
    bytes: int = 0
    flagged: int = 0  # instruction-like sentences removed from this file


@dataclass
class IngestReport:
    files: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    generation: str = ""
    note: str = ""

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    def summary(self) -> str:
        parts = [f"{self.count(s)} {s}" for s in ("added", "updated", "unchanged", "skipped",
                                                   "removed") if self.count(s)]
        return (", ".join(parts) or "nothing to do") + f" in {self.seconds:.1f} s"

    def lines(self) -> list[str]:
        out = []
        for f in self.files:
            extra = f" ({f.reason})" if f.reason else ""
            if f.status in ("added", "updated"):
                extra = f" ({f.pages or 1} page(s), {f.chunks} chunk(s)" + (
                    f", {f.flagged} instruction-like sentence(s) removed" if f.flagged else ""
                ) + ")"
            out.append(f"{f.status:9s} {f.path}{extra}")
        return out

    def to_dict(self) -> dict:
        return {"files": [asdict(f) for f in self.files], "seconds": self.seconds,
                "generation": self.generation, "summary": self.summary(), "note": self.note}


def expand(paths: Iterable[str | Path]) -> tuple[list[Path], list[FileResult]]:
    """Files to ingest (folders walked, hidden entries ignored) and a skipped result, with
    its path and reason, for every named path that yields nothing: missing, unreadable,
    not a file, or a folder with nothing to ingest (a bare "1 skipped" helps nobody)."""
    files: list[Path] = []
    bad: list[FileResult] = []
    for p in paths:
        p = Path(os.path.expanduser(str(p))).absolute()
        try:
            mode = p.stat().st_mode
        except FileNotFoundError:
            why = (f"broken link (to {os.readlink(p)})" if p.is_symlink()
                   else "no such file or folder")
            bad.append(FileResult(str(p), "skipped", why))
            continue
        except OSError as exc:  # e.g. a parent folder we may not enter
            bad.append(FileResult(str(p), "skipped", f"cannot read: {exc.strerror or exc}"))
            continue
        if stat.S_ISDIR(mode):
            found, skipped, hidden = _walk(p)
            files += found
            bad += skipped
            if not found and not skipped:
                bad.append(FileResult(str(p), "skipped", "no PDF, TXT or Markdown file in "
                                      "this folder" + (f" ({hidden} hidden entries ignored)"
                                                       if hidden else "")))
        elif stat.S_ISREG(mode):
            files.append(p)
        else:
            bad.append(FileResult(str(p), "skipped", "not a regular file or folder "
                                  "(a device, pipe or socket)"))
    return files, bad


def _walk(root: Path) -> tuple[list[Path], list[FileResult], int]:
    """(supported files, skipped results, hidden entries) under a folder, sorted by path.
    A subfolder that cannot be listed is named, not silently left out."""
    files: list[Path] = []
    bad: list[FileResult] = []
    hidden = 0

    def unreadable(exc: OSError) -> None:
        bad.append(FileResult(str(exc.filename or root), "skipped",
                              f"cannot read folder: {exc.strerror or exc}"))

    for d, dirs, names in os.walk(root, onerror=unreadable):
        hidden += sum(1 for n in dirs + names if n.startswith("."))
        dirs[:] = [n for n in dirs if not n.startswith(".")]
        for n in names:
            q = Path(d) / n
            if n.startswith(".") or not q.is_file():
                continue
            if q.suffix.lower() in SUPPORTED:
                files.append(q)
            else:
                bad.append(FileResult(str(q), "skipped", f"unsupported type "
                                      f"{q.suffix or '(none)'}: use PDF, TXT or Markdown"))
    return sorted(files), sorted(bad, key=lambda f: f.path), hidden


def builtin_text(name: str) -> bytes:
    return (importlib.resources.files("gamgin_knowledge") / "jokes" / name).read_bytes()


class IngestStopped(RuntimeError):
    """The batch was abandoned before its commit (the node is stopping)."""


class KnowledgeBase:
    def __init__(self, root: str | Path | None = None, embedder=None,
                 embedder_factory: Callable[[], object] | None = None,
                 chunker: SentenceChunker | None = None, limits: Limits | None = None,
                 dense_weight: dict[str, float] | None = None,
                 store: ChunkStore | None = None) -> None:
        self.store = store if store is not None else IndexStore(root)
        # weight of the dense ranks in the fusion, per query language. The packaged MiniLM
        # is English-only: on the bench's Chinese questions any weight > 0 lowered MRR
        # (0 -> 0.91, 0.1 -> 0.88, 0.25 -> 0.83, 1.0 -> 0.65), so Chinese fuses BM25 only
        # until a multilingual embedder is configured
        self.dense_weight = dense_weight if dense_weight is not None else {"en": 1.0,
                                                                            "zh": 0.0}
        self._embedder = embedder
        self._factory = embedder_factory
        self.chunker = chunker or SentenceChunker()
        self.limits = limits or Limits()
        self._lock = threading.Lock()
        self._gen: Generation | None = None
        self._bm25 = None
        self._seen = None  # (CURRENT name) the searcher was built from
        self._df: dict[str, int] = {}  # document frequency of each BM25 term

    @property
    def embedder(self):
        if self._embedder is None:
            if self._factory is None:
                from gamgin_knowledge.backends import make_embedder

                self._factory = lambda: make_embedder("minilm")
            self._embedder = self._factory()
        return self._embedder

    # ------------------------------------------------------------------ ingest
    def add(self, paths: Iterable[str | Path], builtin: Iterable[str] = (),
            on_file: Callable[[FileResult], None] | None = None,
            should_stop: Callable[[], bool] = lambda: False) -> IngestReport:
        """Ingest files/folders (and named built-in collections). Bad files are skipped
        with a reason; the rest go on. Nothing is live until the whole batch is written.
        ``should_stop`` is asked between files: when it says yes, IngestStopped is raised
        and the previous generation stays as it was (a node that is stopping must not
        wait for a long batch to finish)."""
        t0 = time.monotonic()
        files, report_bad = expand(paths)
        report = IngestReport(files=list(report_bad))
        if on_file:
            for res in report_bad:
                on_file(res)
        emb = self.embedder
        todo: list[tuple[str, bytes | None, Path | None]] = [
            (BUILTIN + n, builtin_text(n), None) for n in builtin]
        todo += [(str(f), None, f) for f in files]
        with self.store.writing():
            same = self._all_unchanged(todo, emb)
            if same is not None:  # nothing to do: no chunks loaded, nothing written
                for res in same:
                    report.files.append(res)
                    if on_file:
                        on_file(res)
                report.seconds = time.monotonic() - t0
                return report
            gen = self.store.load(emb.dim, emb.name)
            kept = self._carry_over(gen, emb, report)
            entries = dict(gen.files)
            changed = bool(report.note)
            for i, (key, raw, path) in enumerate(todo):
                if should_stop():
                    raise IngestStopped(f"stopped after {i} of {len(todo)} files; nothing of "
                                        "this batch was added")
                res = self._ingest_one(key, raw, path, entries, kept, emb)
                report.files.append(res)
                changed |= res.status in ("added", "updated")
                if on_file:
                    on_file(res)
            if changed:
                report.generation = self._commit(emb, entries, kept, gen)
        report.seconds = time.monotonic() - t0
        return report

    def _all_unchanged(self, todo: list, emb) -> list[FileResult] | None:
        """"unchanged" results when every file of the batch is stored with the same SHA-256
        by the same embedder, from the store's file list alone: re-adding an unchanged
        folder must not load 100k chunks (~6 s). None when anything needs the full path."""
        if not todo:
            return None
        known = self.store.file_list()
        if known is None or known[0] != emb.name:
            return None
        out = []
        for key, raw, path in todo:
            old = known[1].get(key)
            if old is None:
                return None
            try:
                digest = (hashlib.sha256(raw).hexdigest() if raw is not None
                          else file_sha256(path))
            except OSError:
                return None
            if old.get("sha256") != digest:
                return None
            out.append(FileResult(key, "unchanged", pages=old.get("pages", 0),
                                  chunks=old.get("chunks", 0), bytes=old.get("bytes", 0)))
        return out

    def _carry_over(self, gen: Generation, emb, report: IngestReport) -> dict:
        """What the live generation holds, per file: (chunks, None) = "keep its stored
        vectors" (a store that keeps rows need not read them), or (chunks, vectors) when
        they must be written again."""
        kept: dict[str, tuple[list[StoredChunk], np.ndarray | None]] = {
            f: (gen.chunks_of(f), None) for f in gen.files}
        if gen.chunks and (gen.embedder != emb.name or gen.dim != emb.dim):
            # vectors of another model are not comparable: embed the stored text again
            report.note = f"re-embedded {len(gen.chunks)} chunks ({gen.embedder} -> {emb.name})"
            for f, (chunks, _) in kept.items():
                kept[f] = (chunks, emb.embed([c.text for c in chunks]))
        return kept

    def _ingest_one(self, key: str, raw: bytes | None, path: Path | None, entries: dict,
                    kept: dict, emb) -> FileResult:
        name = key[len(BUILTIN):] if raw is not None else path.name
        try:
            size = len(raw) if raw is not None else path.stat().st_size
            digest = hashlib.sha256(raw).hexdigest() if raw is not None else file_sha256(path)
        except OSError as exc:
            return FileResult(key, "skipped", f"cannot read: {exc.strerror or exc}")
        old = entries.get(key)
        if old and old["sha256"] == digest and key in kept:
            return FileResult(key, "unchanged", pages=old.get("pages", 0),
                              chunks=old.get("chunks", 0), bytes=size)
        try:
            if raw is not None:
                from gamgin_knowledge.ingest import decode_text, markdown_to_text

                pages = [Page(0, markdown_to_text(decode_text(raw)))]
            else:
                pages = read_document(path, self.limits)
            chunks = self._chunk(key, name, pages, collection=raw is not None)
            if not chunks:
                raise SkipFile("no usable text after cleaning")
            vectors = emb.embed([c.text for c in chunks])
        except SkipFile as exc:
            return FileResult(key, "skipped", str(exc), bytes=size)
        except (KeyboardInterrupt, SystemExit, MemoryError):
            raise
        except Exception as exc:  # one broken file must not stop the batch
            return FileResult(key, "skipped", f"error: {type(exc).__name__}: {exc}", bytes=size)
        kept[key] = (chunks, vectors)
        entries[key] = {"sha256": digest, "bytes": size, "name": name,
                        "pages": sum(1 for p in pages if p.number) or 0,
                        "chunks": len(chunks), "added": time.time()}
        return FileResult(key, "updated" if old else "added", pages=entries[key]["pages"],
                          chunks=len(chunks), bytes=size,
                          flagged=sum(len(c.flagged) for c in chunks))

    def _chunk(self, key: str, name: str, pages: list[Page], collection: bool) -> list[StoredChunk]:
        if collection:  # a joke collection: one item per paragraph, never merged
            # (a heading has no sentence end: it is a title, not an item)
            raw = [(0, p.strip()) for p in pages[0].text.split("\n\n")
                   if re.search(r"[。！？.!?]", p)]
        else:
            raw = [(c.page, c.text) for c in self.chunker.chunk([(p.number, p.text)
                                                                 for p in pages])]
        out = []
        for page, text in raw:
            clean, flagged = sanitize(text)
            if not clean.strip():
                continue
            out.append(StoredChunk(text=clean, file=key, name=name, page=page,
                                   ordinal=len(out), tokens=lexical_tokens(clean),
                                   flagged=flagged))
        return out

    def _commit(self, emb, entries: dict, kept: dict, base: Generation) -> str:
        parts = {k: kept[k] for k in sorted(entries) if k in kept}
        return self.store.commit(emb.name, emb.dim, entries, parts, base)

    def reindex_from_other_store(self, kind: str, **add_kw) -> IngestReport | None:
        """After switching stores (``store`` parameter): when this store is empty, ingest
        again the documents the other store at the same folder knew (still on disk)."""
        from gamgin_knowledge.index import other_store_documents

        if self.store.current_name() is not None:
            return None
        known = other_store_documents(kind, getattr(self.store, "root", None))
        paths = [p for p in known if not p.startswith(BUILTIN) and Path(p).is_file()]
        builtin = [p[len(BUILTIN):] for p in known if p.startswith(BUILTIN)]
        if not paths and not builtin:
            return None
        return self.add(paths, builtin=[b for b in builtin if b in JOKE_FILES], **add_kw)

    def remove(self, paths: Iterable[str | Path]) -> IngestReport:
        """Forget files, or everything under a folder (the files themselves are untouched)."""
        t0 = time.monotonic()
        report = IngestReport()
        emb = self.embedder
        with self.store.writing():
            gen = self.store.load(emb.dim, emb.name)
            entries = dict(gen.files)
            gone = set()
            for p in paths:
                p = str(p)
                key = p if p.startswith(BUILTIN) else str(Path(os.path.expanduser(p)).absolute())
                hits = [k for k in entries if k == key or k.startswith(key.rstrip("/") + "/")]
                if not hits:
                    report.files.append(FileResult(key, "skipped", "not in the knowledge base"))
                for k in hits:
                    gone.add(k)
                    report.files.append(FileResult(k, "removed", chunks=entries[k]["chunks"]))
            if gone:
                kept = self._carry_over(gen, emb, report)
                for k in gone:
                    entries.pop(k, None)
                    kept.pop(k, None)
                report.generation = self._commit(emb, entries, kept, gen)
        report.seconds = time.monotonic() - t0
        return report

    def documents(self) -> list[dict]:
        gen = self.store.load()
        return [{"path": k, **v} for k, v in sorted(gen.files.items())]

    # ------------------------------------------------------------------ search
    def generation(self) -> Generation:
        """The live generation, reloaded when CURRENT changed (a file added by the CLI or
        the node is used by the next query, without restarting anything)."""
        name = self.store.current_name()
        with self._lock:
            if self._gen is None or name != self._seen:
                gen = self.store.load()
                bm25 = None
                if gen.chunks:
                    import bm25s

                    bm25 = bm25s.BM25()
                    bm25.index([c.tokens or ["\u2205"] for c in gen.chunks], show_progress=False)
                df: dict[str, int] = {}
                for c in gen.chunks:
                    for t in set(c.tokens):
                        df[t] = df.get(t, 0) + 1
                self._gen, self._bm25, self._seen, self._df = gen, bm25, gen.name or name, df
            return self._gen

    def idf(self, term: str) -> float:
        """How specific a word is in this collection (BM25's IDF, never below a floor)."""
        gen = self.generation()
        n = len(gen.chunks)
        return max(0.1, math.log((n + 1) / (self._df.get(term, 0) + 0.5)))

    def search(self, query: str, k: int = 3, mode: str = "hybrid",
               depth: int = 30) -> list[Passage]:
        """Top-k passages; ``mode`` is hybrid, dense or bm25 (the latter two for benchmarks)."""
        gen = self.generation()
        n = len(gen.chunks)
        if n == 0 or not query.strip():
            return []
        depth = min(max(depth, k), n)
        dense_rank: dict[int, tuple[int, float]] = {}
        bm25_rank: dict[int, tuple[int, float]] = {}
        q = None
        w_dense = self.dense_weight.get(detect_lang(query), 1.0)
        if mode == "dense" or (mode == "hybrid" and w_dense > 0):
            if gen.embedder != self.embedder.name:
                raise RuntimeError(f"index was built with {gen.embedder}, the query embedder "
                                   f"is {self.embedder.name}: ingest again to re-embed")
            from gamgin_knowledge.backends import embed_query

            q = embed_query(self.embedder, [query])
            scores, ids = gen.index.search(q, depth)
            for r, (i, s) in enumerate(zip(ids[0], scores[0], strict=True)):
                if i >= 0:
                    dense_rank[int(i)] = (r, float(s))
        if mode in ("hybrid", "bm25"):
            qt = lexical_tokens(query)
            if qt and self._bm25 is not None:
                ids, scores = self._bm25.retrieve([qt], k=depth, show_progress=False,
                                                  n_threads=1)
                r = 0
                for i, s in zip(ids[0], scores[0], strict=True):
                    if s > 0:  # no shared term: not a lexical match at all
                        bm25_rank[int(i)] = (r, float(s))
                        r += 1
        fused: dict[int, float] = {}
        if mode == "dense":
            w_dense = 1.0
        for ranks, w in ((dense_rank, w_dense), (bm25_rank, 1.0)):
            for i, (r, _s) in ranks.items():
                fused[i] = fused.get(i, 0.0) + w / (RRF_K + r + 1)
        best = sorted(fused, key=lambda i: -fused[i])[:k]
        out = []
        for i in best:
            c = gen.chunks[i]
            dense = dense_rank[i][1] if i in dense_rank else (
                float(np.dot(gen.index.reconstruct(i), q[0])) if q is not None else 0.0)
            out.append(Passage(text=c.text, source=c.name, page=c.page, score=fused[i],
                               path=c.file, dense=dense,
                               bm25=bm25_rank[i][1] if i in bm25_rank else 0.0,
                               flagged=list(c.flagged)))
        return out
