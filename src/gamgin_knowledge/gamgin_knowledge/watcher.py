"""Watched folders: what changed since the last look. Pure Python.

A cheap stat pass (size, mtime) finds candidates; the knowledge base then decides by
content hash, so touching a file costs a hash, not a re-embed.
"""

from __future__ import annotations

from pathlib import Path

from gamgin_knowledge.ingest import SUPPORTED


def snapshot(folders: list[Path]) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for root in folders:
        if not root.is_dir():
            continue
        for p in root.rglob("*"):
            rel = p.relative_to(root).parts
            if any(s.startswith(".") for s in rel) or p.suffix.lower() not in SUPPORTED:
                continue
            try:
                st = p.stat()
            except OSError:
                continue
            if p.is_file():
                out[str(p.absolute())] = (st.st_size, st.st_mtime_ns)
    return out


def diff(old: dict[str, tuple[int, int]], new: dict[str, tuple[int, int]]
         ) -> tuple[list[str], list[str]]:
    """(new or changed paths, vanished paths)."""
    changed = [p for p, sig in new.items() if old.get(p) != sig]
    gone = [p for p in old if p not in new]
    return sorted(changed), sorted(gone)
