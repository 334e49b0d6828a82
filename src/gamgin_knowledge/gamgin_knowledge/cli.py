"""`gamgin kb add PATH... | list | remove PATH... | search QUERY`.

Works on the same on-disk index the dialogue node reads; a running graph picks up the
change on its next question.
"""

from __future__ import annotations

import argparse
import json
import sys

from gamgin_knowledge.core import JOKE_FILES


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="gamgin kb", description="the robot's knowledge base")
    ap.add_argument("--index-dir", default="", help="index folder (default: "
                    "$GAMGIN_DATA/knowledge, i.e. data/knowledge in the workspace)")
    ap.add_argument("--embedder", default="minilm", choices=["minilm", "sentence_transformers"])
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
                           limits=Limits(args.max_file_mb, args.max_pdf_pages))

        def progress(res) -> None:
            if not args.json:
                print(res.status, res.path, f"({res.reason})" if res.reason else "", flush=True)

        try:
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
    kb = KnowledgeBase(args.index_dir or None, embedder_factory=factory)
    if args.cmd == "list":
        docs = kb.documents()
        if args.json:
            print(json.dumps(docs, ensure_ascii=False, indent=1))
        else:
            for d in docs:
                pages = f"{d['pages']} p, " if d.get("pages") else ""
                print(f"{d['path']}  ({pages}{d['chunks']} chunks, {d['bytes'] / 1e3:.1f} kB)")
            print(f"{len(docs)} document(s) in {kb.store.root}")
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
                               embedding_model=args.embedding_model, builtin_jokes=False)
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
