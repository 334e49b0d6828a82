"""`gamgin bench kb --chunks 1000,10000,100000`: the stores at scale (FAISS files and
PostgreSQL + pgvector, exact scan and HNSW).

What is measured is the store, not the model: chunks are synthetic zh/en texts with random
unit vectors (384-d, MiniLM's size), and a query's vector is a noisy copy of one chunk's
vector, so the chunk it was made from is the right answer. Embedding cost is per chunk and
measured by `gamgin bench kb --embedder ...` (add it: ingest of real documents = embedding
time + the store's write time here). A query here is the whole hybrid path the robot runs
(reload check, BM25 over jieba words in Python, dense search in the store, RRF fusion).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

DIM = 384
ZH_WORDS = ["护照", "驾照", "保险", "电费", "钥匙", "抽屉", "医生", "电话", "地址", "生日", "合同",
            "发票", "保修", "说明书", "密码", "车库", "暖气", "空调", "洗衣机", "冰箱", "过期",
            "号码"]
EN_WORDS = ["passport", "insurance", "invoice", "warranty", "garage", "heater", "dentist",
            "phone", "address", "birthday", "contract", "manual", "password", "fridge", "key",
            "drawer", "expires", "number", "street", "boiler", "filter", "battery"]


class _Vectors:
    """The bench's "embedder": questions map to prepared vectors (model time excluded)."""

    name = "bench:random:384"
    dim = DIM

    def __init__(self) -> None:
        self.q: dict[str, np.ndarray] = {}

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.stack([self.q[t] for t in texts])


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _collection(n: int, rng: random.Random, nrng: np.random.Generator):
    from gamgin_knowledge.index import StoredChunk
    from gamgin_knowledge.text import lexical_tokens

    parts: dict[str, tuple[list, np.ndarray]] = {}
    files: dict[str, dict] = {}
    per_file = 10
    vecs = _unit(nrng.standard_normal((n, DIM), dtype=np.float32))
    for f0 in range(0, n, per_file):
        path = f"/bench/doc{f0 // per_file:06d}.txt"
        chunks = []
        for i in range(f0, min(n, f0 + per_file)):
            if i % 2:
                text = "".join(rng.choice(ZH_WORDS) for _ in range(30)) + f"编号{i}。"
            else:
                text = " ".join(rng.choice(EN_WORDS) for _ in range(30)) + f" item{i}."
            chunks.append(StoredChunk(text, path, Path(path).name, 0, i - f0,
                                      lexical_tokens(text), []))
        parts[path] = (chunks, vecs[f0: f0 + len(chunks)])
        files[path] = {"sha256": f"{f0:064x}", "bytes": 0, "name": Path(path).name,
                       "pages": 0, "chunks": len(chunks), "added": 0.0}
    return files, parts, vecs


def _pg_pss(store) -> float:
    """PSS of the embedded server's processes (postmaster and its children), MB."""
    import psutil

    if store.embedded is None or not store.embedded.pids():
        return 0.0
    try:
        pm = psutil.Process(store.embedded.pids()[0])
        procs = [pm, *pm.children(recursive=True)]
        return sum(p.memory_full_info().pss for p in procs) / 1e6
    except psutil.Error:
        return float("nan")


def _du(path: Path) -> float:
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True)
    return int(out.stdout.split()[0]) / 1e6 if out.returncode == 0 else float("nan")


def _queries(kb, vecs: np.ndarray, emb: _Vectors, nrng, n_q: int, hnsw: bool = False):
    from gamgin_knowledge.backends import embed_query

    lat, hits = [], 0
    for j in range(n_q):
        target = int(nrng.integers(len(vecs)))
        q = f"q{j} {'护照 过期' if target % 2 else 'passport expires'}"
        emb.q[q] = _unit(vecs[target] + 0.6 * _unit(nrng.standard_normal(DIM)))
        t = time.perf_counter()
        ps = kb.search(q, k=10)
        lat.append(time.perf_counter() - t)
        # rank of the chunk the query vector came from, among the dense hits
        gen = kb.generation()
        _, ids = gen.index.search(embed_query(emb, [q]), 10)
        hits += any(gen.chunks[i].ordinal == target % 10 and
                    gen.chunks[i].file == f"/bench/doc{target // 10:06d}.txt"
                    for i in ids[0] if i >= 0)
        del ps
    lat.sort()
    return {"p50_ms": 1000 * statistics.median(lat),
            "p95_ms": 1000 * lat[min(len(lat) - 1, round(0.95 * (len(lat) - 1)))],
            "dense_recall@10": hits / n_q}


def run(sizes: list[int], stores: list[str], n_q: int = 100, out: Path | None = None) -> dict:
    import psutil

    from gamgin_knowledge.core import KnowledgeBase
    from gamgin_knowledge.index import make_store

    proc = psutil.Process()
    rows = []
    for n in sizes:
        rng, nrng = random.Random(n), np.random.default_rng(n)
        t = time.perf_counter()
        files, parts, vecs = _collection(n, rng, nrng)
        print(f"--- {n} chunks (generated in {time.perf_counter() - t:.1f} s)", flush=True)
        for kind in stores:
            with tempfile.TemporaryDirectory(prefix="gamgin-bench-scale-") as tmp:
                root = Path(tmp) / "idx"
                t = time.perf_counter()
                # HNSW is built separately below, so both search modes are measured
                store = make_store(kind, root)
                if kind == "pgvector":
                    store.hnsw_min_chunks = 1 << 62
                start_s = time.perf_counter() - t
                try:
                    emb = _Vectors()
                    kb = KnowledgeBase(root, embedder=emb, store=store,
                                       dense_weight={"en": 1.0, "zh": 1.0})
                    base = store.load(DIM, emb.name)
                    t = time.perf_counter()
                    with store.writing():
                        store.commit(emb.name, DIM, files, parts, base)
                    ingest_s = time.perf_counter() - t
                    rss0 = proc.memory_info().rss
                    t = time.perf_counter()
                    kb.generation()  # load + BM25 index: what a reader pays after a commit
                    load_s = time.perf_counter() - t
                    row = {"store": kind, "chunks": n, "start_s": start_s,
                           "ingest_s": ingest_s, "ingest_chunks_per_s": n / ingest_s,
                           "reload_s": load_s,
                           "rss_reader_mb": (proc.memory_info().rss - rss0) / 1e6,
                           **_queries(kb, vecs, emb, nrng, n_q)}
                    row["search"] = "exact (IndexFlatIP)" if kind == "faiss" else "exact scan"
                    if kind == "pgvector":
                        row["server_pss_mb"] = _pg_pss(store)
                        row["disk_mb"] = _du(root / "pg")
                        rows.append(row)
                        _print(row)
                        t = time.perf_counter()
                        with store.writing():
                            store._conn().execute(
                                "SET maintenance_work_mem = '256MB'")
                            store._conn().execute(
                                "CREATE INDEX gamgin_kb_chunk_hnsw ON gamgin_kb_chunk "
                                "USING hnsw (embedding vector_ip_ops)")
                        build = time.perf_counter() - t
                        row = dict(row, search="HNSW (m=16, ef_search=40)",
                                   hnsw_build_s=build, **_queries(kb, vecs, emb, nrng, n_q))
                        row["server_pss_mb"] = _pg_pss(store)
                        row["disk_mb"] = _du(root / "pg")
                    else:
                        row["disk_mb"] = _du(root)
                    rows.append(row)
                    _print(row)
                finally:
                    store.close()
    result = {"rows": rows, "dim": DIM, "queries": n_q, "cpu_count": os.cpu_count(),
              "load_avg": os.getloadavg()[0]}
    if out is not None:
        out.write_text(json.dumps(result, indent=1))
        print(f"wrote {out}")
    return result


def _print(r: dict) -> None:
    extra = f", HNSW build {r['hnsw_build_s']:.1f} s" if "hnsw_build_s" in r else ""
    srv = f", server PSS {r['server_pss_mb']:.0f} MB" if "server_pss_mb" in r else ""
    print(f"{r['store']:8s} {r['chunks']:7d} {r['search']:26s} ingest "
          f"{r['ingest_chunks_per_s']:8.0f} chunks/s, reload {r['reload_s']:5.1f} s, "
          f"query p50 {r['p50_ms']:6.1f} ms p95 {r['p95_ms']:6.1f} ms, dense recall@10 "
          f"{r['dense_recall@10']:.2f}, reader +{r['rss_reader_mb']:.0f} MB RSS{srv}, "
          f"disk {r['disk_mb']:.0f} MB{extra}", flush=True)
