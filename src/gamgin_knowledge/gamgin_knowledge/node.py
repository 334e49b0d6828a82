"""knowledge node: keeps the index in step with watched folders while the graph runs.

Drop a PDF/TXT/Markdown file into a watched folder (default ``data/documents``) and the
next question can use it: the node ingests it into the shared on-disk index, and the
dialogue node's retriever reloads the index when it changes. ``knowledge/rescan``
(std_srvs/Trigger) forces a pass; each pass's report is published on ``knowledge/report``
(std_msgs/String, JSON, latched). ``knowledge/add`` (KnowledgeAdd) ingests or forgets named
files/folders, ``knowledge/search`` (KnowledgeSearch) answers from the index.

The services run in a reentrant callback group on a 3-thread executor: a long ingest holds
one thread while searches, rescans and /diagnostics keep being served.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from rclpy.callback_groups import ReentrantCallbackGroup
from std_msgs.msg import String
from std_srvs.srv import Trigger

from gamgin_common import qos
from gamgin_common.paths import data_dir
from gamgin_common.stage import StageError, StageNode, run_stage
from gamgin_interfaces.msg import Passage as PassageMsg
from gamgin_interfaces.srv import KnowledgeAdd, KnowledgeSearch
from gamgin_knowledge.chunking import SentenceChunker
from gamgin_knowledge.core import JOKE_FILES, IngestReport, IngestStopped, KnowledgeBase
from gamgin_knowledge.ingest import Limits
from gamgin_knowledge.watcher import diff, snapshot


class KnowledgeNode(StageNode):
    def __init__(self) -> None:
        super().__init__("knowledge")
        p = self.declare_parameter
        self.index_dir = str(p("index_dir", "").value)
        self.watch_paths = [s for s in p("watch_paths", ["documents"]).value if s]
        self.scan_period_s = float(p("scan_period_s", 3.0).value)
        self.builtin_jokes = bool(p("builtin_jokes", True).value)
        self.remove_missing = bool(p("remove_missing", True).value)
        self.embedder_name = str(p("embedder", "minilm").value)
        self.embedding_model = str(p("embedding_model", "").value)
        self.store_kind = str(p("store", "faiss").value)
        self.database_url = str(p("database_url", "").value)
        self.chunk_tokens = int(p("chunk_tokens", 160).value)
        self.overlap_tokens = int(p("overlap_tokens", 32).value)
        self.max_file_mb = float(p("max_file_mb", 50.0).value)
        self.max_pdf_pages = int(p("max_pdf_pages", 500).value)
        self.search_k = int(p("search_k", 3).value)
        self.kb: KnowledgeBase | None = None
        self.retriever = None
        self.folders: list[Path] = []
        self._seen: dict[str, tuple[int, int]] = {}
        self._busy = threading.Lock()
        self._stopping = threading.Event()
        self._timer = None
        self._first = True

    def configure_stage(self) -> None:
        from gamgin_knowledge.backends import make_embedder

        try:
            chunker = SentenceChunker(self.chunk_tokens, self.overlap_tokens)
            embedder = make_embedder(self.embedder_name, self.embedding_model)
        except (ValueError, FileNotFoundError, RuntimeError) as exc:
            raise StageError(f"{exc} (parameters 'embedder', 'embedding_model', "
                             "'chunk_tokens', 'overlap_tokens')") from exc
        from gamgin_knowledge.index import make_store

        try:
            # pgvector without a URL starts its embedded PostgreSQL here; cleanup stops it
            store = make_store(self.store_kind, self.index_dir or None, self.database_url)
        except (ValueError, RuntimeError, OSError) as exc:
            raise StageError(f"{exc} (parameters 'store', 'database_url')") from exc
        self.kb = KnowledgeBase(self.index_dir or None, embedder=embedder, chunker=chunker,
                                limits=Limits(self.max_file_mb, self.max_pdf_pages),
                                store=store)
        self.folders = []
        for w in self.watch_paths:
            f = Path(w).expanduser()
            f = f if f.is_absolute() else data_dir() / f
            f.mkdir(parents=True, exist_ok=True)
            self.folders.append(f)
        self.health.value("index", repr(self.kb.store))
        self.health.value("watching", ",".join(map(str, self.folders)) or "none")
        self.health.value("embedder", embedder.name)
        self.report_pub = self.stage_publisher(String, "knowledge/report", qos.STATE)
        from gamgin_knowledge.retriever import KnowledgeRetriever

        # same base as the ingest side: one model and one in-memory index in this process
        self.retriever = KnowledgeRetriever(kb=self.kb, builtin_jokes=False,
                                            embedder=self.embedder_name)
        group = ReentrantCallbackGroup()  # an ingest must not hold up search or rescan
        self.stage_service(Trigger, "knowledge/rescan", self._on_rescan, callback_group=group)
        self.stage_service(KnowledgeAdd, "knowledge/add", self._on_add, callback_group=group)
        self.stage_service(KnowledgeSearch, "knowledge/search", self._on_search,
                           callback_group=group)
        self._count()

    def activate_stage(self) -> None:
        self._stopping.clear()
        self._first = True
        self._timer = self.create_timer(self.scan_period_s, self._tick)
        threading.Thread(target=self._scan, daemon=True).start()

    def deactivate_stage(self) -> None:
        self._stopping.set()  # an ingest under way gives up before its commit
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None

    def cleanup_stage(self) -> None:
        if self.kb is not None:
            # a scan under way gives up before its commit (deactivate set _stopping); wait a
            # little for it, but close anyway: the embedded PostgreSQL must not outlive us
            got = self._busy.acquire(timeout=1.0)
            try:
                self.kb.store.close()
            finally:
                if got:
                    self._busy.release()
        self.kb = None
        self.retriever = None

    # ------------------------------------------------------------------ scanning
    def _tick(self) -> None:
        if not self._busy.locked():
            threading.Thread(target=self._scan, daemon=True).start()

    def _scan(self, force: bool = False) -> IngestReport | None:
        """One pass: ingest new/changed files, forget vanished ones. Never raises: an error
        is logged and shown on /diagnostics, and the next pass tries again."""
        kb = self.kb
        if kb is None or not self._busy.acquire(blocking=force):
            return None
        try:
            # the store was switched (faiss <-> pgvector): documents added from anywhere
            # (`gamgin kb add`, knowledge/add) are read again into the new, empty store
            moved = (kb.reindex_from_other_store(self.store_kind,
                                                 should_stop=self._stopping.is_set)
                     if self._first else None)
            if moved is not None:
                self._publish(moved)
            now = snapshot(self.folders)
            changed, gone = diff({} if (force or self._first) else self._seen, now)
            gone = [g for g in gone if g in self._seen] if self.remove_missing else []
            jokes = JOKE_FILES if (self._first and self.builtin_jokes) else ()
            if not changed and not gone and not jokes:
                return None
            report = kb.add(changed, builtin=jokes, should_stop=self._stopping.is_set)
            if gone:
                removed = kb.remove(gone)
                report.files += removed.files
            if self._first and self.remove_missing:
                # files deleted while the node was down
                known = [d["path"] for d in kb.documents()
                         if any(d["path"].startswith(str(f) + "/") for f in self.folders)]
                stale = [k for k in known if k not in now]
                if stale:
                    report.files += kb.remove(stale).files
            self._seen = now
            self._first = False
            self._publish(report)
            return report
        except IngestStopped:
            return None  # stopping: the next start scans again
        except Exception as exc:
            self.get_logger().error(f"ingest failed: {type(exc).__name__}: {exc}")
            self.health.error(f"ingest failed: {exc} (check the index folder "
                              f"{kb.store.root} is writable; retrying)")
            self.health.count("ingest_errors")
            return None
        finally:
            self._busy.release()

    def _publish(self, report: IngestReport) -> None:
        for line in report.lines():
            if not line.startswith("unchanged"):
                self.get_logger().info(line)
        self.get_logger().info(f"ingest: {report.summary()}")
        self.health.value("last_ingest", report.summary())
        skipped = report.count("skipped")
        self.health.count("files_skipped", skipped)
        if skipped:
            self.health.warn(f"{skipped} file(s) skipped: see knowledge/report")
        else:
            self.health.ok("ready")
        self._count()
        self.report_pub.publish(String(data=json.dumps(report.to_dict(), ensure_ascii=False)))

    def _count(self) -> None:
        docs = self.kb.documents() if self.kb else []
        self.health.value("documents", str(len(docs)))
        self.health.value("chunks", str(sum(d.get("chunks", 0) for d in docs)))

    def _on_rescan(self, request: Trigger.Request, response: Trigger.Response):
        report = self._scan(force=True)
        response.success = report is not None or self.kb is not None
        response.message = report.summary() if report else "nothing to do"
        return response


    def _on_add(self, request: KnowledgeAdd.Request, response: KnowledgeAdd.Response):
        """Ingest (or forget) the named files and folders. Bad files are skipped with their
        reason in ``report_json``; ``success`` is true when the batch ran."""
        kb = self.kb
        paths = [self._resolve(x) for x in request.paths if x.strip()]
        if kb is None or not paths:
            response.success = False
            response.summary = ("the knowledge node is not configured (see /diagnostics)"
                                if kb is None else "no paths given")
            response.report_json = json.dumps({"files": [], "summary": response.summary})
            return response
        try:
            report = kb.remove(paths) if request.remove else kb.add(
                paths, should_stop=self._stopping.is_set)
        except IngestStopped as exc:
            response.success = False
            response.summary = f"the knowledge node is stopping: {exc}; send it again"
            response.report_json = json.dumps({"files": [], "summary": response.summary},
                                              ensure_ascii=False)
            return response
        except Exception as exc:  # the index could not be written: say so, keep serving
            self.get_logger().error(f"knowledge/add failed: {type(exc).__name__}: {exc}")
            self.health.error(f"knowledge/add failed: {exc} (check the index folder "
                              f"{kb.store.root} is writable)")
            self.health.count("ingest_errors")
            response.success = False
            response.summary = f"failed: {exc}"
            response.report_json = json.dumps({"files": [], "summary": response.summary},
                                              ensure_ascii=False)
            return response
        self._publish(report)
        response.success = True
        response.summary = report.summary() + skipped_note(report)
        response.report_json = json.dumps(report.to_dict(), ensure_ascii=False)
        return response

    def _on_search(self, request: KnowledgeSearch.Request, response: KnowledgeSearch.Response):
        r = self.retriever
        if r is None or not request.query.strip():
            return response
        from gamgin_knowledge.text import detect_lang

        lang = request.language if request.language in ("zh", "en") else detect_lang(
            request.query)
        try:
            hits = r.search(request.query, int(request.k) or self.search_k)
            response.answer = r.answer(request.query, hits, lang)
        except Exception as exc:
            self.get_logger().error(f"knowledge/search failed: {type(exc).__name__}: {exc}")
            self.health.count("search_errors")
            return response
        response.passages = [PassageMsg(text=h.text, source=h.source, path=h.path,
                                        page=int(h.page), score=float(h.score)) for h in hits]
        self.health.count("searches")
        return response

    @staticmethod
    def _resolve(path: str) -> str:
        """Absolute as given; relative paths are under the data folder, like watch_paths."""
        if path.startswith("builtin:"):
            return path
        f = Path(path).expanduser()
        return str(f if f.is_absolute() else data_dir() / f)


def skipped_note(report: IngestReport, names: int = 3) -> str:
    """' (skipped: no such file or folder: a.pdf; corrupt PDF: b.pdf, c.pdf)': every reason,
    with the files it hit (a few per reason), so the caller learns which file and why
    without parsing report_json, where the full list is."""
    by: dict[str, list[str]] = {}
    for f in report.files:
        if f.status == "skipped":
            # the reason's head ("corrupt PDF"), but "cannot read: <errno text>" in full
            reason = (f.reason if f.reason.startswith("cannot read")
                      else f.reason.split(":")[0].split(" (")[0]) or "skipped"
            by.setdefault(reason, []).append(Path(f.path).name or f.path)
    if not by:
        return ""
    parts = [f"{r}: {', '.join(n[:names])}" + (f" +{len(n) - names} more" if len(n) > names
                                               else "") for r, n in sorted(by.items())]
    return f" (skipped: {'; '.join(parts)})"


def main(args: list[str] | None = None) -> None:
    # 3 threads: a long knowledge/add holds one, the rest keep search and diagnostics live
    run_stage(KnowledgeNode, args, threads=3)


if __name__ == "__main__":
    main()
