"""Ingestion into a real on-disk index with the real MiniLM embedder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gamgin_knowledge.core import KnowledgeBase
from gamgin_knowledge.index import IndexStore
from gamgin_knowledge.ingest import Limits, SkipFile, decode_text
from gamgin_knowledge.synthetic import write_pdf


def kb_at(root: Path, embedder) -> KnowledgeBase:
    return KnowledgeBase(root, embedder=embedder, limits=Limits(max_pdf_pages=20))


def test_mixed_folder_report(tmp_path, mixed_folder, embedder):
    kb = kb_at(tmp_path / "idx", embedder)
    report = kb.add([mixed_folder, tmp_path / "nowhere.pdf"])
    by = {Path(f.path).name: f for f in report.files}
    assert {n for n, f in by.items() if f.status == "added"} == {
        "护照.pdf", "notes.md", "阿姨.txt", "heater.txt"}
    reasons = {n: f.reason for n, f in by.items() if f.status == "skipped"}
    assert "encrypted" in reasons["locked.pdf"]
    assert "no text layer" in reasons["scan.pdf"]
    assert "corrupt" in reasons["broken.pdf"]
    assert "empty" in reasons["empty.txt"]
    assert "binary" in reasons["photo.txt"]
    assert "too many pages" in reasons["huge.pdf"]
    assert "unsupported" in reasons["table.xlsx"]
    assert "no such file" in reasons["nowhere.pdf"]
    assert by["护照.pdf"].pages == 2 and by["护照.pdf"].chunks == 2  # one chunk per page
    assert by["heater.txt"].flagged == 4
    docs = {Path(d["path"]).name: d for d in kb.documents()}
    assert set(docs) == {"护照.pdf", "notes.md", "阿姨.txt", "heater.txt"}
    assert report.summary().startswith("4 added, 8 skipped")


def test_reingest_skips_unchanged_and_updates_changed(tmp_path, mixed_folder, embedder):
    kb = kb_at(tmp_path / "idx", embedder)
    first = kb.add([mixed_folder])
    gen1 = kb.store.current_name()
    again = kb.add([mixed_folder])
    assert again.count("unchanged") == first.count("added") == 4
    assert again.count("added") == again.count("updated") == 0
    assert kb.store.current_name() == gen1  # nothing written
    os.utime(mixed_folder / "notes.md")  # touched, same bytes: still unchanged
    assert kb.add([mixed_folder / "notes.md"]).count("unchanged") == 1
    (mixed_folder / "notes.md").write_text("The car insurance expires on 9 June 2029.\n")
    third = kb.add([mixed_folder])
    assert third.count("updated") == 1 and third.count("unchanged") == 3
    gen = kb.store.load()
    notes = [c.text for c in gen.chunks if c.name == "notes.md"]
    assert notes == ["The car insurance expires on 9 June 2029."]
    assert gen.index.ntotal == len(gen.chunks)


def test_remove_file_and_folder(tmp_path, mixed_folder, embedder):
    kb = kb_at(tmp_path / "idx", embedder)
    kb.add([mixed_folder])
    r = kb.remove([mixed_folder / "notes.md"])
    assert r.count("removed") == 1
    assert "notes.md" not in {Path(d["path"]).name for d in kb.documents()}
    assert kb.remove([tmp_path / "not-there.md"]).count("skipped") == 1
    kb.remove([mixed_folder])
    gen = kb.store.load()
    assert gen.files == {} and gen.chunks == [] and gen.index.ntotal == 0


def test_gb18030_and_utf8_and_binary():
    assert decode_text("王阿姨".encode("gb18030")) == "王阿姨"
    assert decode_text("\ufeff护照".encode()) == "护照"
    with pytest.raises(SkipFile, match="binary"):
        decode_text(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(SkipFile):
        decode_text(os.urandom(4000).replace(b"\x00", b"\x01"))


def test_interrupt_inside_batch_leaves_index_unchanged(tmp_path, mixed_folder, embedder):
    kb = kb_at(tmp_path / "idx", embedder)
    kb.add([mixed_folder / "notes.md"])
    before = kb.store.current_name()
    more = tmp_path / "more"
    more.mkdir()
    for i in range(3):
        (more / f"n{i}.txt").write_text(f"Fact number {i} is {i * 7}.")

    def stop_after_first(res) -> None:
        raise KeyboardInterrupt  # Ctrl-C while the batch runs

    with pytest.raises(KeyboardInterrupt):
        kb.add([more], on_file=stop_after_first)
    assert kb.store.current_name() == before
    assert {Path(d["path"]).name for d in kb.documents()} == {"notes.md"}


def test_killed_ingest_process_never_corrupts_the_index(tmp_path, embedder):
    """SIGKILL a real `gamgin kb add` mid-batch: the previous generation stays live and
    loads; the next ingest cleans the debris and works."""
    root = tmp_path / "idx"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The spare key is under the blue flower pot.")
    kb = kb_at(root, embedder)
    kb.add([docs / "a.txt"])
    before = kb.store.current_name()
    for i in range(12):
        write_pdf(docs / f"report{i:02d}.pdf", [f"第{i}份报告。" + "这一段是填充内容。" * 12])
    proc = subprocess.Popen([sys.executable, "-m", "gamgin_knowledge.cli", "--index-dir",
                             str(root), "add", "--no-jokes", str(docs)],
                            stdout=subprocess.PIPE, text=True)
    seen = 0
    for line in proc.stdout:  # wait until it is busy embedding, then kill it
        seen += line.startswith("added")
        if seen >= 1:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert seen >= 1
    store = IndexStore(root)
    assert store.current_name() == before
    gen = store.load()
    assert [Path(f).name for f in gen.files] == ["a.txt"]
    assert gen.index.ntotal == len(gen.chunks) == 1
    t0 = time.monotonic()
    report = kb.add([docs / "report00.pdf"])
    assert report.count("added") == 1, time.monotonic() - t0
    assert not [p for p in root.iterdir() if p.name.startswith(".tmp-")]
    assert len([p for p in root.iterdir() if p.name.startswith("gen-")]) == 1


def test_size_limit_and_unsupported_named_file(tmp_path, embedder):
    big = tmp_path / "big.txt"
    big.write_text("这是一句很长的话。" * 200_000, encoding="utf-8")  # ~5.4 MB
    odd = tmp_path / "photo.jpg"
    odd.write_bytes(b"\xff\xd8\xff")
    kb = KnowledgeBase(tmp_path / "idx", embedder=embedder, limits=Limits(max_file_mb=1))
    report = kb.add([big, odd])
    reasons = {Path(f.path).name: f.reason for f in report.files}
    assert "too big" in reasons["big.txt"] and "max_file_mb" in reasons["big.txt"]
    assert "unsupported type .jpg" in reasons["photo.jpg"]
    assert kb.store.current_name() is None  # nothing usable: no index written


def test_paths_that_give_nothing_are_named_with_their_reason(tmp_path, embedder, monkeypatch):
    """A missing path, an unreadable file or folder, an empty folder, a pipe: each gets its
    own skipped line with the path and why, reported as it is found (`gamgin kb add`)."""
    empty = tmp_path / "empty"
    empty.mkdir()
    only_hidden = tmp_path / "hidden"
    only_hidden.mkdir()
    (only_hidden / ".draft.md").write_text("a hidden draft")
    locked_dir = tmp_path / "locked"
    locked_dir.mkdir()
    (locked_dir / "a.txt").write_text("never read")
    secret = tmp_path / "secret.txt"
    secret.write_text("never read")
    pipe = tmp_path / "pipe.txt"
    os.mkfifo(pipe)
    good = tmp_path / "good.txt"
    good.write_text("The spare key is under the blue flower pot.")
    # tests may run as root, whom chmod 000 does not stop: refuse these two like the
    # kernel would refuse another user
    real_scandir, real_open = os.scandir, open

    def scandir(path="."):
        if Path(path) == locked_dir:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    def fake_open(path, *a, **kw):
        if Path(path) == secret:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *a, **kw)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr("builtins.open", fake_open)
    seen = []
    kb = KnowledgeBase(tmp_path / "idx", embedder=embedder)
    report = kb.add([tmp_path / "no" / "such.pdf", empty, only_hidden, locked_dir, secret,
                     pipe, good], on_file=seen.append)
    reasons = {Path(f.path).name: f.reason for f in report.files if f.status == "skipped"}
    assert reasons == {
        "such.pdf": "no such file or folder",
        "empty": "no PDF, TXT or Markdown file in this folder",
        "hidden": "no PDF, TXT or Markdown file in this folder (1 hidden entries ignored)",
        "locked": "cannot read folder: Permission denied",
        "secret.txt": "cannot read: Permission denied",
        "pipe.txt": "not a regular file or folder (a device, pipe or socket)",
    }
    assert [f.path for f in seen] == [f.path for f in report.files]  # each one reported live
    assert report.count("added") == 1 and report.summary().startswith("1 added, 6 skipped")
    assert all(f"skipped   {f.path} ({f.reason})" in report.lines() for f in seen
               if f.status == "skipped")


def test_cli_names_a_missing_file_and_why(tmp_path):
    missing = tmp_path / "no" / "such" / "file.pdf"
    out = subprocess.run([sys.executable, "-m", "gamgin_knowledge.cli", "--index-dir",
                          str(tmp_path / "idx"), "add", "--no-jokes", str(missing)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out  # nothing asked for could be used
    assert f"skipped {missing} (no such file or folder)" in out.stdout, out.stdout
    assert "1 skipped" in out.stdout
