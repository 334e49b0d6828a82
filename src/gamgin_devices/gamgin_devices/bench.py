"""`gamgin bench intents`: accuracy and latency of the local intents on a labelled zh/en set,
per sentence layer (Home Assistant's sentences, ours, both) and per category. Prints
tables, writes results/bench-intents.json under $GAMGIN_HOME.

A set is YAML: ``state`` ({device: {param: value, "on": 0|1}}, what relative commands start
from; default: each device's registry default, off), ``robot_room`` (the room the robot is
in, "" = unknown; an item's own ``robot_room`` wins), and ``commands``: items with ``lang``,
``text``, ``expect`` (a list of "device:on|off", "device:param=value", "music:command[:query]";
or "ask", "none", "say:<exact answer>"), optional ``cat`` (category), ``heldout``, and
``rest`` (the part of the text the dialogue must still answer; "" = none).
``--set heldout`` is the held-out set written without looking at the grammar. ``--spoken``
says each command with the product's TTS and hears it with its STT first (bench_spoken.py)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import time
from pathlib import Path

import yaml

from gamgin_common.paths import results_path
from gamgin_devices.intents import DeviceIntents, IntentAnswer
from gamgin_devices.registry import Refused, load_registry

SET = Path(__file__).parent / "bench_commands.yaml"
# written from the categories alone, never used for tuning: only run it to judge a change
HELDOUT = Path(__file__).parent / "heldout_commands.yaml"
# written from config/devices.yaml before reading the grammar; the set to tune against
DEV = Path(__file__).parent / "dev_commands.yaml"
SETS = {"default": SET, "heldout": HELDOUT, "dev": DEV}
QUERIES = {"HassGetState", "HassClimateGetTemperature", "GamginGetValue"}
CONFIGS = {"ha": ("ha",), "gamgin": ("gamgin",), "both": ("ha", "gamgin")}
SPOKEN_SPEEDS = (1.0, 1.1)  # --spoken: the configured voices, and 10 % faster


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
        elif a.kind == "param" and a.value is not None:
            out.append(f"{a.device_id}:{a.param}={a.value:g}")
        elif a.kind == "param":  # relative with no state known
            out.append(f"{a.device_id}:{a.param}{a.delta or 0:+g}")
        elif a.kind == "music":
            out.append(":".join(x for x in ("music", a.command, a.query) if x))
    return sorted(out)


def matches(got: object, want: object) -> bool:
    """A label holds. "none" means no device may change: a state question answered from
    the state ("say:...") changes nothing and holds too."""
    return got == want or (want == "none" and isinstance(got, str) and got.startswith("say:"))


def wrong_action(got: object, want: object) -> bool:
    """The worst failure: a device was moved that the label did not ask for."""
    return isinstance(got, list) and bool(got) and not matches(got, want)


def llm_layer(items: list[dict], firsts: list[object], model: str,
              state: dict | None = None) -> list[dict]:
    """What falls through the grammar ("none") goes to the LLM, as in the product: the
    dialogue (Qwen by default) with the device tools, calls validated against the words
    (gamgin_llm.grounding) and recorded instead of executed. Per item: what the combined
    layers did, and the fallback's time."""
    from gamgin_common.paths import resolve_model
    from gamgin_llm.backends import make_backend
    from gamgin_llm.core import Dialogue, DialogueConfig
    from gamgin_llm.memory import ConversationMemory
    from gamgin_llm.node import DEFAULT_PROMPT, DEFAULT_PROMPT_ZH
    from gamgin_llm.tools import ToolRegistry, device_context, register_device_tools

    registry = load_registry()
    state = state or default_state(registry)
    # as gamgin_llm.ros_tools has them from devices/state: with the power and current values
    devices = {d.id: {"name_en": d.name_en, "name_zh": d.name_zh, "room": d.room,
                      "type": d.type, "params": list(d.params),
                      "aliases": [*d.aliases_zh, *d.aliases_en],
                      "on": bool(state.get(d.id, {}).get("on")),
                      "values": {k: float(v) for k, v in state.get(d.id, {}).items()
                                 if k in d.params}}
               for d in registry.devices.values()}
    calls: list[str] = []

    def power(a: dict) -> dict:
        calls.append(f"{a['device_id']}:{'on' if a['on'] else 'off'}")
        return {"ok": True, "message": "done"}

    def param(a: dict) -> dict:
        # the device layer refuses an out-of-range value (DeviceController.set_param): no move
        try:
            value = registry.devices[a["device_id"]].param(a["name"]).check(a["value"])
        except (KeyError, Refused) as exc:
            return {"ok": False, "message": str(exc)}
        calls.append(f"{a['device_id']}:{a['name']}={value:g}")
        return {"ok": True, "message": "done", "value": value}

    reg = ToolRegistry()
    register_device_tools(reg, lambda: devices, power, param,
                          lambda _a: {"ok": True, "message": "[]"})
    backend = make_backend("llama_cpp", model_path=resolve_model(model), n_threads=2,
                           n_ctx=2048, constrain_tools="smollm" in model)
    backend.load()
    cfg = DialogueConfig(system_prompt=DEFAULT_PROMPT, system_prompt_zh=DEFAULT_PROMPT_ZH,
                         temperature=0.0, model_languages=("en", "zh"), turn_timeout_s=60.0,
                         max_tokens=64)
    d = Dialogue(backend, cfg, ConversationMemory(768, 0.0, backend.count_tokens), reg,
                 tool_context=lambda: device_context(devices), log=lambda _s: None)
    d.warm()
    out = []
    for item, first in zip(items, firsts, strict=True):
        if first != "none":
            out.append({"got": first, "layer": "grammar", "llm_s": None})
            continue
        calls.clear()
        d.memory.reset()
        t = time.perf_counter()
        r = d.respond(item["text"], item["lang"], lambda: False, lambda _p: None)
        asked = r.route == "fallback" and r.detail.startswith("asked back")
        got: object = sorted(calls) if calls else ("ask" if asked else "none")
        out.append({"got": got, "layer": "llm", "llm_s": time.perf_counter() - t,
                    "reply": r.text[:80]})
    backend.close()
    return out


def expected(item: dict) -> object:
    e = item["expect"]
    return e if isinstance(e, str) else sorted(str(x) for x in e)


def _squash(text: str) -> str:
    return re.sub(r"[\W_]+", "", text or "").lower()


def rest_ok(item: dict, answer: IntentAnswer | None) -> bool:
    """An item's ``rest`` label (if any): the answer leaves that text for the dialogue."""
    if "rest" not in item:
        return True
    got = _squash(getattr(answer, "rest", "") if answer is not None else "")
    want = _squash(str(item["rest"] or ""))
    return want in got if want else not got


def default_state(registry) -> dict:
    return {d.id: {**{p.name: p.default for p in d.params.values()}, "on": 0.0}
            for d in registry.devices.values()}


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def run(path: Path = SET, repeats: int = 3) -> dict:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    registry = load_registry()
    items, state = data["commands"], data.get("state") or default_state(registry)
    room = str(data.get("robot_room") or "")
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
        cat_cpu: dict[str, list[float]] = {}
        for item in items:
            di.set_robot_room(str(item.get("robot_room", room) or ""))  # an id or a name
            for _ in range(repeats):
                t, c = time.perf_counter(), time.thread_time()
                ans = di.handle(item["text"], item["lang"], state=state, dry=True)
                lat.append(time.perf_counter() - t)
                cpu.append(time.thread_time() - c)
                cat_cpu.setdefault(str(item.get("cat") or "-"), []).append(cpu[-1])
            got = describe(ans)
            ok.append(matches(got, expected(item)) and rest_ok(item, ans))
            got_all.append(got)
        per_item[cname] = ok
        by_lang = {}
        for lang in ("zh", "en", "heldout"):
            sel = [o for o, it in zip(ok, items, strict=True)
                   if it["lang"] == lang or (lang == "heldout" and it.get("heldout"))]
            by_lang[lang] = {"n": len(sel), "correct": sum(sel),
                             "accuracy": sum(sel) / len(sel) if sel else 0.0}
        by_cat: dict[str, dict] = {}
        for o, it in zip(ok, items, strict=True):
            c = by_cat.setdefault(str(it.get("cat") or "-"), {"n": 0, "correct": 0})
            c["n"] += 1
            c["correct"] += int(o)
        for cat, c in by_cat.items():
            c["cpu_ms"] = {"p50": 1000 * statistics.median(cat_cpu[cat]),
                           "p99": 1000 * pct(cat_cpu[cat], 0.99)}
        wrong = sum(wrong_action(g, expected(it)) for g, it in zip(got_all, items, strict=True))
        results["configs"][cname] = {
            "wrong_actions": wrong,
            "layers": list(layers), "init_s": round(init_s, 3), "n": len(items),
            "correct": sum(ok), "accuracy": sum(ok) / len(items), "by_lang": by_lang,
            "by_cat": by_cat,
            "latency_ms": {"p50": 1000 * statistics.median(lat), "p99": 1000 * pct(lat, 0.99),
                           "max": 1000 * max(lat)},
            "cpu_ms": {"p50": 1000 * statistics.median(cpu), "p99": 1000 * pct(cpu, 0.99),
                       "max": 1000 * max(cpu)}}
        if cname == "both":
            results["items"] = [
                {"lang": it["lang"], "text": it["text"], "cat": it.get("cat", ""),
                 "robot_room": it.get("robot_room", room), "expect": expected(it), "got": g,
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
    ap.add_argument("--llm", nargs="?", const="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
                    default="", metavar="GGUF",
                    help="also the LLM fallback (default model: the packaged Qwen) for what "
                         "the grammar leaves: accuracy per layer (grammar, LLM, both)")
    ap.add_argument("--set", default="default",
                    help="labelled commands: a YAML path, or 'default' / 'dev' (tune on it) / "
                         "'heldout' (the held-out set: judge with it, never tune on it)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per command")
    ap.add_argument("--show-errors", action="store_true", help="list misrecognized commands")
    ap.add_argument("--spoken", action="store_true",
                    help="also say each command with the product's TTS and hear it with its "
                         "STT (config/tts.yaml, config/stt.yaml): accuracy spoken vs typed")
    ap.add_argument("--speeds", default=",".join(f"{s:g}" for s in SPOKEN_SPEEDS),
                    help="--spoken: speaking speeds (x the configured one), comma-separated")
    ap.add_argument("--limit", type=int, default=0,
                    help="--spoken: an even sample of this many commands (0 = all)")
    ap.add_argument("--heard", default="",
                    help="--spoken: judge the transcripts of this earlier run's JSON again "
                         "(a grammar change measured on the very same hearing)")
    ap.add_argument("--out", default="", help="JSON path (default results/bench-intents.json, "
                                              "with --spoken results/bench-intents-spoken.json)")
    args = ap.parse_args(argv)
    if args.spoken:
        return spoken_main(args)
    res = run(SETS.get(args.set) or Path(args.set), args.repeats)
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
    cats = list(res["configs"]["both"]["by_cat"])
    if cats != ["-"]:
        print(f"\n{'category':<14}{'n':>4}" + "".join(f"{n:>12}" for n in res["configs"])
              + "   cpu p50/p99 ms (both)")
        for cat in cats:
            row = [res["configs"][n]["by_cat"][cat] for n in res["configs"]]
            ms = res["configs"]["both"]["by_cat"][cat]["cpu_ms"]
            print(f"{cat:<14}{row[0]['n']:>4}" + "".join(
                f"{r['correct']:>5} {r['correct'] / r['n']:>5.0%} " for r in row)
                + f"{ms['p50']:>9.1f} /{ms['p99']:>5.1f}")
        print()
    print("wrong actions (a device moved that the label did not ask for): " + ", ".join(
        f"{n} {c['wrong_actions']}" for n, c in res["configs"].items()))
    if args.llm:
        data = yaml.safe_load((SETS.get(args.set) or Path(args.set)).read_text("utf-8"))
        firsts = [it["got"] for it in res["items"]]
        layered = llm_layer(data["commands"], firsts, args.llm, data.get("state"))
        want = [expected(it) for it in data["commands"]]
        fell = [i for i, x in enumerate(layered) if x["layer"] == "llm"]
        ok_llm = [i for i in fell if matches(layered[i]["got"], want[i])]
        ok_all = [i for i, x in enumerate(layered) if matches(x["got"], want[i])]
        wrong = [i for i, x in enumerate(layered) if wrong_action(x["got"], want[i])]
        secs = sorted(layered[i]["llm_s"] for i in fell)
        res["llm_layer"] = {
            "model": args.llm, "fell_through": len(fell), "llm_right": len(ok_llm),
            "both_right": len(ok_all), "n": len(want), "wrong_actions": len(wrong),
            "llm_turn_s_p50": statistics.median(secs) if secs else None,
            "by_lang": {lang: sum(1 for i in ok_all if data["commands"][i]["lang"] == lang)
                        for lang in ("zh", "en")},
            "items": [{"text": it["text"], "expect": w, **x} for it, w, x in
                      zip(data["commands"], want, layered, strict=True)]}
        ll = res["llm_layer"]
        n_zh = sum(1 for it in data["commands"] if it["lang"] == "zh")
        print(f"LLM fallback ({args.llm}): {len(fell)} fell through the grammar, "
              f"{len(ok_llm)} of them right; grammar + LLM {len(ok_all)}/{len(want)} "
              f"({len(ok_all) / len(want):.0%}; zh {ll['by_lang']['zh']}/{n_zh}, en "
              f"{ll['by_lang']['en']}/{len(want) - n_zh}); wrong actions {len(wrong)}; "
              f"LLM turn p50 {ll['llm_turn_s_p50'] or 0:.2f} s")
    la = res["layers_add"]
    print(f"HA sentences alone get {la['right_with_ha_only']} right; ours alone "
          f"{la['right_with_gamgin_only']}; together {la['right_with_both']} "
          f"(ours add {la['both_right_but_ha_alone_wrong']}, HA adds "
          f"{la['both_right_but_gamgin_alone_wrong']} that ours alone miss)")
    if args.show_errors:
        for it in res["items"]:
            if not it["ok"]:
                where = f" @{it['robot_room']}" if it["robot_room"] else ""
                print(f"  MISS [{it['lang']}{where}] {it['text']!r}: expected {it['expect']}, "
                      f"got {it['got']}")
    out = results_path("bench-intents.json", args.out)
    out.write_text(json.dumps(res, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"wrote {out}")
    return 0


def spoken_main(args: argparse.Namespace) -> int:
    from gamgin_devices.bench_spoken import add_llm, report, run_spoken

    out = results_path("bench-intents-spoken.json", args.out)  # checked before the run
    speeds = tuple(float(x) for x in args.speeds.split(",") if x.strip())
    heard = json.loads(Path(args.heard).read_text(encoding="utf-8")) if args.heard else None
    res = run_spoken(SETS.get(args.set) or Path(args.set), speeds, args.limit, heard=heard)
    if heard is not None:
        res["heard_from"] = args.heard
    # written before the LLM layer too: minutes of hearing are not lost if it fails
    out.write_text(json.dumps(res, ensure_ascii=False, indent=1), encoding="utf-8")
    if args.llm:
        res = add_llm(res, args.llm)
        out.write_text(json.dumps(res, ensure_ascii=False, indent=1), encoding="utf-8")
    report(res, args.show_errors)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
