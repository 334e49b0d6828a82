"""`gamgin kb add PATH... | list | remove PATH... | search QUERY`.

Works on the same on-disk index the dialogue node reads; a running graph picks up the
change on its next question.
"""

from __future__ import annotations

import argparse
import json
import sys

from gamgin_knowledge.core import JOKE_FILES


def config_defaults() -> dict:
    """The knowledge node's parameters from knowledge.yaml in the config dir `gamgin up` uses
    ($GAMGIN_CONFIG, else $GAMGIN_HOME/config, else the workspace's config/): `gamgin kb`
    then uses the same store, embedder and index as the node."""
    import os
    from pathlib import Path

    import yaml

    from gamgin_common.paths import workspace_root

    home = os.environ.get("GAMGIN_HOME")
    d = os.environ.get("GAMGIN_CONFIG") or (
        str(Path(home) / "config") if home and (Path(home) / "config").is_dir() else
        str(workspace_root() / "config") if workspace_root() else "")
    try:
        doc = yaml.safe_load((Path(d) / "knowledge.yaml").read_text()) if d else None
    except (OSError, yaml.YAMLError):
        return {}
    return ((doc or {}).get("/gamgin/knowledge") or {}).get("ros__parameters") or {}


def build_parser() -> argparse.ArgumentParser:
    cfg = config_defaults()
    ap = argparse.ArgumentParser(prog="gamgin kb", description="the robot's knowledge base")
    ap.add_argument("--index-dir", default=str(cfg.get("index_dir") or ""),
                    help="index folder (default: config/knowledge.yaml, else "
                    "$GAMGIN_DATA/knowledge, i.e. data/knowledge in the workspace)")
    ap.add_argument("--embedder", default=str(cfg.get("embedder") or "minilm"),
                    choices=["minilm", "use", "e5", "sentence_transformers"],
                    help="default: config/knowledge.yaml")
    ap.add_argument("--store", default=str(cfg.get("store") or "faiss"),
                    choices=["faiss", "pgvector"], help="faiss files, or PostgreSQL + pgvector "
                    "(embedded unless --database-url); default: config/knowledge.yaml")
    ap.add_argument("--database-url", default=str(cfg.get("database_url") or ""),
                    help="postgresql://… for --store pgvector (default: config/knowledge.yaml, "
                    "else an embedded server under the index folder)")
    ap.add_argument("--embedding-model", default="", help="model dir (default: packaged MiniLM)")
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    sub = ap.add_subparsers(dest="cmd", required=True)
    add = sub.add_parser("add", help="ingest files or folders (PDF, TXT, Markdown)")
    add.add_argument("paths", nargs="+")
    add.add_argument("--no-jokes", action="store_true", help="do not add the built-in jokes")
    add.add_argument("--chunk-tokens", type=int, default=160)
    add.add_argument("--overlap-tokens", type=int, default=32)
    add.add_argument("--max-file-mb", type=float, default=50.0)
    add.add_argument("--max-pdf-pages", type=int, default=500)
    sub.add_parser("list", help="documents in the knowledge base")
    rm = sub.add_parser("remove", help="forget files, or everything under a folder")
    rm.add_argument("paths", nargs="+")
    se = sub.add_parser("search", help="try a question")
    se.add_argument("query")
    se.add_argument("-k", type=int, default=3)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from gamgin_knowledge.index import make_store

    try:
        store = make_store(args.store, args.index_dir or None, args.database_url)
    except (RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        return _run(args, store)
    finally:
        store.close()  # an embedded PostgreSQL started for this command stops with it


def _run(args: argparse.Namespace, store) -> int:
    from gamgin_knowledge.backends import make_embedder
    from gamgin_knowledge.chunking import SentenceChunker
    from gamgin_knowledge.core import KnowledgeBase
    from gamgin_knowledge.ingest import Limits

    def factory():
        return make_embedder(args.embedder, args.embedding_model)

    if args.cmd == "add":
        try:
            chunker = SentenceChunker(args.chunk_tokens, args.overlap_tokens)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        kb = KnowledgeBase(args.index_dir or None, embedder_factory=factory, chunker=chunker,
                           limits=Limits(args.max_file_mb, args.max_pdf_pages), store=store)

        def progress(res) -> None:
            if not args.json:
                print(res.status, res.path, f"({res.reason})" if res.reason else "", flush=True)

        try:
            moved = kb.reindex_from_other_store(args.store, on_file=progress)
            if moved is not None and not args.json:
                print(f"store switched to {args.store}: documents read again: "
                      f"{moved.summary()}")
            report = kb.add(args.paths, builtin=() if args.no_jokes else JOKE_FILES,
                            on_file=progress)
        except KeyboardInterrupt:
            print("interrupted: the index is unchanged", file=sys.stderr)
            return 130
        except FileNotFoundError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps(report.to_dict(), ensure_ascii=False, indent=1))
        else:
            print(("\n".join(report.lines()) + "\n") if report.note else "", end="")
            print(report.summary() + (f"; {report.note}" if report.note else ""))
        asked = [f for f in report.files if not f.path.startswith("builtin:")]
        return 1 if asked and all(f.status == "skipped" for f in asked) else 0
    kb = KnowledgeBase(args.index_dir or None, embedder_factory=factory, store=store)
    if args.cmd == "list":
        docs = kb.documents()
        if args.json:
            print(json.dumps(docs, ensure_ascii=False, indent=1))
        else:
            for d in docs:
                pages = f"{d['pages']} p, " if d.get("pages") else ""
                print(f"{d['path']}  ({pages}{d['chunks']} chunks, {d['bytes'] / 1e3:.1f} kB)")
            print(f"{len(docs)} document(s) in {kb.store!r}")
        return 0
    if args.cmd == "remove":
        report = kb.remove(args.paths)
        if args.json:
            print(json.dumps(report.to_dict(), ensure_ascii=False, indent=1))
        else:
            print("\n".join(report.lines()))
        return 0 if report.count("removed") else 1
    if args.cmd == "search":
        from gamgin_knowledge.retriever import KnowledgeRetriever
        from gamgin_knowledge.text import detect_lang

        r = KnowledgeRetriever(index_dir=args.index_dir, embedder=args.embedder,
                               embedding_model=args.embedding_model, builtin_jokes=False,
                               kb=kb)
        hits = r.search(args.query, args.k)
        lang = detect_lang(args.query)
        if args.json:
            print(json.dumps([h.__dict__ for h in hits], ensure_ascii=False, indent=1))
        else:
            for h in hits:
                where = f"{h.source} p.{h.page}" if h.page else h.source
                print(f"{h.score:.4f}  {where}: {h.text[:100]!r}")
            print("answer:", r.answer_extractively(args.query, hits, lang))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
