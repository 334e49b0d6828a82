"""`gamgin bench soak [--minutes 30]`: repeated spoken turns through the real graph,
watching every node's memory. Reports RSS after warm-up (the first --warmup-minutes) and
at the end per node, the growth in %, and how many turns were answered. The target is
<= 5 % growth over 30 minutes. Writes results/bench-soak.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from gamgin.bench_e2e import TURNS, GraphRun, make_config, synth_clips
from gamgin_common.paths import results_path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gamgin bench soak", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--warmup-minutes", type=float, default=2.0)
    ap.add_argument("--gap", type=float, default=2.0, help="seconds between turns")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    out = results_path("bench-soak.json", args.out)  # fails now, not after the run

    import psutil
    from diagnostic_msgs.msg import DiagnosticArray

    from gamgin.graph import default_config_dir
    from gamgin_common import qos, testing
    from gamgin_interfaces.msg import TurnTrace

    env = testing.test_env(testing.unique_domain_id())
    os.environ.update(env)
    testing.ensure_pulse()
    tmp = Path(tempfile.mkdtemp(prefix="gamgin-soak-"))
    env["GAMGIN_DATA"] = str(tmp / "data")
    clips = synth_clips(TURNS, tmp)
    probe = testing.RosProbe("bench_soak")
    diags = probe.collect(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
    traces = probe.collect(TurnTrace, "/gamgin/turn/trace", qos.EVENTS)
    samples: dict[str, list[tuple[float, float]]] = {}
    restarts: dict[str, set[int]] = {}
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(5.0):
            pids = {}
            for arr in list(diags)[-300:]:
                for s in arr.status:
                    vals = {kv.key: kv.value for kv in s.values}
                    if "pid" in vals:
                        pids[s.name] = int(vals["pid"])
            for name, pid in pids.items():
                restarts.setdefault(name, set()).add(pid)
                try:
                    rss = psutil.Process(pid).memory_info().rss / 1e6
                except psutil.Error:
                    continue
                samples.setdefault(name, []).append((time.monotonic(), rss))

    result: dict = {"minutes": args.minutes}
    with testing.null_sink("soak_room") as room:
        cfg = make_config(default_config_dir(), tmp / "config", room, room, "always_on")
        run = GraphRun(cfg, env, tmp / "graph.log", exclude=["foxglove_bridge", "music", "wake"])
        sampler = threading.Thread(target=sample, daemon=True)
        try:
            time.sleep(20.0)  # start-up
            sampler.start()
            t0 = time.monotonic()
            turns = 0
            while time.monotonic() - t0 < args.minutes * 60:
                _text, path, _ = clips[turns % len(clips)]
                n = len(traces)
                testing.play_to_sink(path, room)
                testing.wait_for(lambda n=n: len(traces) > n, 30)
                turns += 1
                time.sleep(args.gap)
                if turns % 20 == 0:
                    print(f"  {turns} turns, {(time.monotonic() - t0) / 60:.1f} min", flush=True)
        finally:
            stop.set()
            run.stop()
            probe.close()
    warm_end = t0 + args.warmup_minutes * 60
    nodes = {}
    for name, pts in sorted(samples.items()):
        after = [r for t, r in pts if t >= warm_end]
        if len(after) < 2:
            continue
        base, end, peak = after[0], after[-1], max(after)
        # growth that keeps going is a leak; growth that stops is caches and DDS histories
        # filling to their depth: the second half of the run tells them apart
        half = [r for t, r in pts if t >= (warm_end + pts[-1][0]) / 2]
        nodes[name] = {"rss_after_warmup_mb": round(base, 1), "rss_end_mb": round(end, 1),
                       "rss_peak_mb": round(peak, 1),
                       "growth_percent": round(100 * (end - base) / base, 2),
                       "second_half_growth_percent": round(
                           100 * (half[-1] - half[0]) / half[0], 2) if len(half) > 1 else 0.0,
                       "processes": len(restarts.get(name, ())),
                       # one point a minute, minutes since the first turn
                       "series_mb": [[round((t - t0) / 60, 1), round(r, 1)]
                                     for i, (t, r) in enumerate(pts) if i % 12 == 0]}
    outcomes: dict[str, int] = {}
    for tr in traces:
        outcomes[tr.outcome] = outcomes.get(tr.outcome, 0) + 1
    result.update(turns=turns, traces=len(traces), outcomes=outcomes, nodes=nodes)
    print(f"{turns} spoken turns in {args.minutes} min, {len(traces)} turn traces; "
          f"outcomes {outcomes}")
    print(f"{'node':24s} {'after warm-up':>14s} {'end':>8s} {'peak':>8s} {'growth':>8s} "
          f"{'2nd half':>9s}")
    for name, r in nodes.items():
        print(f"{name:24s} {r['rss_after_warmup_mb']:11.1f} MB {r['rss_end_mb']:8.1f} "
              f"{r['rss_peak_mb']:8.1f} {r['growth_percent']:7.2f}% "
              f"{r['second_half_growth_percent']:8.2f}%"
              + ("" if r["processes"] == 1 else f"  ({r['processes']} processes: restarted!)"))
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
