"""`gamgin status`: one look at every node's health, from /diagnostics.

Exit code: 0 all OK/WARN; 1 some node reports ERROR; 3 a node of the graph did not
report at all (not running, or on another ROS_DOMAIN_ID). For headless robots and scripts.
Nodes the running `gamgin up` left out (`--no-audio`, `--exclude`, `--only`, `--no-bridge`)
are not expected: it writes what it started to a runtime file this command reads.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

LEVELS = {0: "OK", 1: "WARN", 2: "ERROR", 3: "STALE"}
SHOWN_KEYS = ("backend", "model", "device", "lifecycle", "rss_mb")


def selection_file(domain: str | None = None) -> Path:
    """Where `gamgin up` on this ROS domain says which nodes it started (one per user and
    domain: tests on their own domains never see a developer's graph)."""
    domain = domain if domain is not None else (os.environ.get("ROS_DOMAIN_ID") or "0")
    runtime = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(runtime) / f"gamgin-up-{os.getuid()}-domain{domain}.json"


def record_selection(path: Path, started: list[str], left_out: list[str]) -> None:
    path.write_text(json.dumps({"pid": os.getpid(), "started": started, "left_out": left_out}))


def forget_selection(path: Path) -> None:
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def running_selection(path: Path | None = None) -> dict | None:
    """What the `gamgin up` still running on this domain started, or None."""
    try:
        sel = json.loads((path or selection_file()).read_text())
        os.kill(int(sel["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # none recorded, or its gamgin up is gone (killed): expect the graph
    return sel


def collect(seconds: float, expected: set[str]) -> dict[str, dict]:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray

    from gamgin_common import qos

    rclpy.init()
    node = rclpy.create_node(f"gamgin_status_{os.getpid()}")
    latest: dict[str, dict] = {}

    def on_diag(arr: DiagnosticArray) -> None:
        for s in arr.status:
            latest[s.name] = {"level": LEVELS.get(s.level[0] if isinstance(s.level, bytes)
                                                  else int(s.level), "?"),
                              "message": s.message,
                              "values": {kv.key: kv.value for kv in s.values}}

    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, qos.DIAGNOSTICS)
    end = time.monotonic() + seconds
    # Nodes publish at 1 Hz: stop early once every expected node was heard twice over.
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.1)
        if expected and expected <= set(latest) and time.monotonic() > end - seconds + 1.2:
            break
    node.destroy_node()
    rclpy.try_shutdown()
    return latest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gamgin status", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wait", type=float, default=3.0, help="seconds to listen (default 3)")
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    ap.add_argument("--all", action="store_true", help="also show nodes outside the graph")
    args = ap.parse_args(argv)

    expected: set[str] = set()
    namespace = "/gamgin"
    try:
        from gamgin.graph import default_config_dir, load_graph

        graph = load_graph(default_config_dir() / "graph.yaml")
        namespace = graph.namespace
        expected = {f"{namespace}/{n.name}" for n in graph.nodes}
    except Exception as exc:
        print(f"(graph description unavailable: {exc})", file=sys.stderr)
    left_out: list[str] = []
    sel = running_selection()
    if expected and sel is not None:
        left_out = sorted(set(sel.get("left_out", [])))
        expected -= {f"{namespace}/{name}" for name in left_out}

    seen = collect(args.wait, expected)
    rows = {k: v for k, v in seen.items() if args.all or not expected or k in expected}
    missing = sorted(expected - set(seen))
    for name in missing:
        rows[name] = {"level": "MISSING", "message": "no diagnostics: not running?", "values": {}}
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        width = max([len(n) for n in rows] + [4])
        print(f"{'NODE':{width}s}  {'LEVEL':7s}  MESSAGE")
        for name in sorted(rows):
            r = rows[name]
            extra = "  ".join(f"{k}={r['values'][k]}" for k in SHOWN_KEYS if k in r["values"])
            print(f"{name:{width}s}  {r['level']:7s}  {r['message']}" + (f"   [{extra}]" if extra
                                                                           else ""))
        if not rows:
            print("no node reported on /diagnostics (graph not running, or another "
                  "ROS_DOMAIN_ID?)")
        if left_out:
            print(f"(left out by gamgin up: {', '.join(left_out)})")
    if any(r["level"] == "ERROR" for r in rows.values()):
        return 1
    if missing or not rows:
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
