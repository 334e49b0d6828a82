"""`gamgin bench memory`: what the whole graph costs in memory, per process.

Runs the default graph under `gamgin up` (virtual mic and speaker, always-on STT), waits
until it is ready and settled, gives it a typed Mandarin and an English turn for the LLM and
a device command (so the models have run), then reads every process of `gamgin up`'s tree:
**PSS** (proportional set size: a shared library or an mmap'd model file counted once,
split between the processes that map it — the sum is what the graph really takes) and RSS
(what `top` shows; it counts every shared page in every process). Prints the per-node table
and the sums, writes results/bench-memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

TURNS = [("你好，你叫什么名字？", "zh"), ("What can you do?", "en"), ("把电视打开", "zh")]


def node_of(cmdline: list[str]) -> str:
    """The node name from a node's command line (`-r __node:=<name>`), a composed process's
    ``<process>(<node>+<node>...)``, else what it is."""
    names = [arg.split(":=", 1)[1] for arg in cmdline if arg.startswith("__node:=")]
    if "--process" in cmdline[:-1]:
        return f"{cmdline[cmdline.index('--process') + 1]}({'+'.join(names)})"
    if names:
        return names[0]
    text = " ".join(cmdline)
    if "gamgin_common.standby" in text:
        return "(standby)"
    if "gamgin up" in text or text.endswith("/gamgin up") or " up " in f" {text} ":
        return "(gamgin up)"
    return Path(cmdline[0]).name if cmdline else "?"


def measure(root_pid: int) -> list[dict]:
    import psutil

    rows = []
    root = psutil.Process(root_pid)
    for p in [root, *root.children(recursive=True)]:
        try:
            mem = p.memory_full_info()
            rows.append({"pid": p.pid, "name": node_of(p.cmdline()),
                         "pss_mb": round(mem.pss / 1e6, 1), "rss_mb": round(mem.rss / 1e6, 1),
                         "uss_mb": round(mem.uss / 1e6, 1)})
        except psutil.Error:
            continue
    return sorted(rows, key=lambda r: -r["pss_mb"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gamgin bench memory", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="", help="a config/profiles/<name>.yaml to apply")
    ap.add_argument("--no-standby", action="store_true", help="without the spare process")
    ap.add_argument("--startup-timeout", type=float, default=180.0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    from diagnostic_msgs.msg import DiagnosticArray

    from gamgin.bench_e2e import GraphRun, make_config
    from gamgin.graph import default_config_dir
    from gamgin_common import qos, testing
    from gamgin_common.paths import results_path
    from gamgin_common.stamps import clock_turn_id
    from gamgin_interfaces.msg import TokenChunk, Transcript

    domain = testing.unique_domain_id()
    env = testing.test_env(domain)
    os.environ.update(env)
    testing.ensure_pulse()
    tmp = Path(tempfile.mkdtemp(prefix="gamgin-memory-"))
    probe = testing.RosProbe("bench_memory")
    diags = probe.collect(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
    replies = probe.collect(TokenChunk, "/gamgin/reply", qos.EVENTS)
    typed = probe.publisher(Transcript, "/gamgin/transcript", qos.EVENTS)
    extra = ["--no-standby"] if args.no_standby else []
    if args.profile:
        extra += ["--profile", args.profile]
    result: dict = {"config": vars(args)}
    try:
        with testing.null_sink("mem_mic") as mic, testing.null_sink("mem_spk") as spk:
            cfg = make_config(default_config_dir(), tmp / "config", mic, spk, "always_on")
            run = GraphRun(cfg, env, tmp / "graph.log", ["foxglove_bridge"], extra=extra)
            try:
                def active(name: str) -> bool:
                    for arr in reversed(list(diags)):
                        for st in arr.status:
                            if st.name == f"/gamgin/{name}":
                                vals = {kv.key: kv.value for kv in st.values}
                                return vals.get("lifecycle") == "active"
                    return False

                names = ["turn", "mic", "speaker", "wake", "stt", "llm", "tts", "devices",
                         "knowledge"]
                if not testing.wait_for(lambda: all(active(n) for n in names),
                                        args.startup_timeout):
                    raise RuntimeError(f"graph not ready; see {tmp / 'graph.log'}")
                testing.wait_for(lambda: typed.get_subscription_count() >= 2, 30)
                time.sleep(5.0)  # warm-ups, the standby's imports
                answered = 0
                for text, lang in TURNS:
                    turn = clock_turn_id()
                    typed.publish(Transcript(turn_id=turn, text=text, language=lang,
                                             confidence=1.0, is_final=True, source="typed"))
                    answered += testing.wait_for(
                        lambda t=turn: any(r.turn_id == t and r.is_final for r in replies), 60)
                    time.sleep(3.0)  # the answer is spoken
                result["turns_answered"] = answered
                time.sleep(2.0)
                rows = measure(run.proc.pid)
            finally:
                run.stop()
    finally:
        probe.close()
    result["processes"] = rows
    result["pss_total_mb"] = round(sum(r["pss_mb"] for r in rows), 1)
    result["rss_total_mb"] = round(sum(r["rss_mb"] for r in rows), 1)
    print(f"{'process':<18}{'PSS MB':>9}{'RSS MB':>9}{'USS MB':>9}")
    for r in rows:
        print(f"{r['name']:<18}{r['pss_mb']:>9.1f}{r['rss_mb']:>9.1f}{r['uss_mb']:>9.1f}")
    print(f"{'total (' + str(len(rows)) + ')':<18}{result['pss_total_mb']:>9.1f}"
          f"{result['rss_total_mb']:>9.1f}")
    print(f"turns answered: {result['turns_answered']}/{len(TURNS)}")
    out = results_path("bench-memory.json", args.out)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
