"""`gamgin bench intents`: accuracy and latency of the local intents on a labelled zh/en set,
per sentence layer (Home Assistant's sentences, ours, both). Prints a table, writes
results/bench-intents.json under $GAMGIN_HOME."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import yaml

from gamgin_common.paths import results_path
from gamgin_devices.intents import DeviceIntents, IntentAnswer
from gamgin_devices.registry import load_registry

SET = Path(__file__).parent / "bench_commands.yaml"
QUERIES = {"HassGetState", "HassClimateGetTemperature", "GamginGetValue"}
CONFIGS = {"ha": ("ha",), "gamgin": ("gamgin",), "both": ("ha", "gamgin")}


def describe(answer: IntentAnswer | None) -> object:
    """An answer in the label's terms: "none", "ask", or a sorted list of action strings."""
    if answer is None:
        return "none"
    if answer.question:
        return "ask"
    if answer.intent in QUERIES:
        return f"say:{answer.speech}"
    out = []
    for a in answer.actions:
        if a.kind == "power":
            out.append(f"{a.device_id}:{'on' if a.on else 'off'}")
        elif a.kind == "param":
            out.append(f"{a.device_id}:{a.param}={a.value:g}")
        elif a.kind == "music":
            out.append(":".join(x for x in ("music", a.command, a.query) if x))
    return sorted(out)


def expected(item: dict) -> object:
    e = item["expect"]
    return e if isinstance(e, str) else sorted(str(x) for x in e)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def run(path: Path = SET, repeats: int = 3) -> dict:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    items, state = data["commands"], data["state"]
    registry = load_registry()
    results: dict = {"configs": {}, "items": []}
    per_item: dict[str, list[bool]] = {}
    for cname, layers in CONFIGS.items():
        t0 = time.perf_counter()
        di = DeviceIntents(registry, layers=layers, warm=True)
        init_s = time.perf_counter() - t0
        lat: list[float] = []
        cpu: list[float] = []  # thread CPU time: what a command costs, without the waiting
        ok: list[bool] = []
        got_all = []
        for item in items:
            for _ in range(repeats):
                t, c = time.perf_counter(), time.thread_time()
                ans = di.handle(item["text"], item["lang"], state=state, dry=True)
                lat.append(time.perf_counter() - t)
                cpu.append(time.thread_time() - c)
            got = describe(ans)
            ok.append(got == expected(item))
            got_all.append(got)
        per_item[cname] = ok
        by_lang = {}
        for lang in ("zh", "en", "heldout"):
            sel = [o for o, it in zip(ok, items, strict=True)
                   if it["lang"] == lang or (lang == "heldout" and it.get("heldout"))]
            by_lang[lang] = {"n": len(sel), "correct": sum(sel), "accuracy": sum(sel) / len(sel)}
        results["configs"][cname] = {
            "layers": list(layers), "init_s": round(init_s, 3), "n": len(items),
            "correct": sum(ok), "accuracy": sum(ok) / len(items), "by_lang": by_lang,
            "latency_ms": {"p50": 1000 * statistics.median(lat), "p99": 1000 * pct(lat, 0.99),
                           "max": 1000 * max(lat)},
            "cpu_ms": {"p50": 1000 * statistics.median(cpu), "p99": 1000 * pct(cpu, 0.99),
                       "max": 1000 * max(cpu)}}
        if cname == "both":
            results["items"] = [
                {"lang": it["lang"], "text": it["text"], "expect": expected(it), "got": g,
                 "ok": o, "ha": h, "gamgin": m}
                for it, g, o, h, m in zip(items, got_all, ok, per_item["ha"],
                                          per_item["gamgin"], strict=True)]
    both, ha, ours = per_item["both"], per_item["ha"], per_item["gamgin"]
    results["layers_add"] = {
        "right_with_ha_only": sum(h for h in ha),
        "right_with_gamgin_only": sum(ours),
        "right_with_both": sum(both),
        "both_right_but_ha_alone_wrong": sum(b and not h for b, h in zip(both, ha, strict=True)),
        "both_right_but_gamgin_alone_wrong": sum(b and not m
                                                 for b, m in zip(both, ours, strict=True)),
    }
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "load_avg_1min": os.getloadavg()[0]}
    results["set"] = str(path)
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gamgin bench intents", description=__doc__)
    ap.add_argument("--set", type=Path, default=SET, help="labelled commands (YAML)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per command")
    ap.add_argument("--show-errors", action="store_true", help="list misrecognized commands")
    args = ap.parse_args(argv)
    res = run(args.set, args.repeats)
    print(f"{'layers':<10}{'zh acc':>12}{'en acc':>12}{'all':>12}{'held out':>12}"
          f"{'p50 ms':>9}{'p99 ms':>9}{'cpu p50':>9}{'cpu p99':>9}{'init s':>8}")
    for name, c in res["configs"].items():
        zh, en = c["by_lang"]["zh"], c["by_lang"]["en"]
        print(f"{name:<10}{zh['correct']:>4}/{zh['n']:<3}{zh['accuracy']:>5.0%}"
              f"{en['correct']:>4}/{en['n']:<3}{en['accuracy']:>5.0%}"
              f"{c['correct']:>4}/{c['n']:<3}{c['accuracy']:>5.0%}"
              f"{c['by_lang']['heldout']['correct']:>4}/{c['by_lang']['heldout']['n']:<3}"
              f"{c['by_lang']['heldout']['accuracy']:>5.0%}"
              f"{c['latency_ms']['p50']:>9.1f}{c['latency_ms']['p99']:>9.1f}"
              f"{c['cpu_ms']['p50']:>9.1f}{c['cpu_ms']['p99']:>9.1f}{c['init_s']:>8.2f}")
    la = res["layers_add"]
    print(f"HA sentences alone get {la['right_with_ha_only']} right; ours alone "
          f"{la['right_with_gamgin_only']}; together {la['right_with_both']} "
          f"(ours add {la['both_right_but_ha_alone_wrong']}, HA adds "
          f"{la['both_right_but_gamgin_alone_wrong']} that ours alone miss)")
    if args.show_errors:
        for it in res["items"]:
            if not it["ok"]:
                print(f"  MISS [{it['lang']}] {it['text']!r}: expected {it['expect']}, "
                      f"got {it['got']}")
    out = results_path("bench-intents.json")
    out.write_text(json.dumps(res, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
