"""`gamgin bench llm`: time to first token and tokens/s per backend (in-process llama.cpp vs
a llama_cpp.server on loopback, same model), the node's RSS, and router fast-path latency.

Prints a table and writes results/bench-llm.json under $GAMGIN_HOME. The machine is shared:
compare ratios between rows of one run, not absolute numbers between runs.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from gamgin_common.paths import resolve_model, results_path

PROMPTS = ["What is your name?", "Tell me a short story about a ball.",
           "Why do dogs like walks?", "What should I eat for dinner?",
           "Say something nice about cats."]
SYSTEM = ("You are Jinjian, a playful robot dog who lives with a family. Answer in one or two "
          "short, friendly sentences of plain words.")


def _stream_stats(backend, prompt: str, max_tokens: int, tools: list | None = None) -> dict:
    msgs = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
    t0 = time.perf_counter()
    first = None
    n = 0
    for d in backend.stream(msgs, tools=tools, max_tokens=max_tokens, temperature=0.0,
                            cancelled=lambda: False):
        if d.text:
            n += 1
            if first is None:
                first = time.perf_counter() - t0
    total = time.perf_counter() - t0
    gen_s = total - (first or total)
    return {"ttft_ms": (first or total) * 1000, "tokens": n,
            "tok_s": (n - 1) / gen_s if n > 1 and gen_s > 0 else 0.0, "total_s": total}


def _summary(rows: list[dict]) -> dict:
    return {"ttft_ms_median": statistics.median(r["ttft_ms"] for r in rows),
            "ttft_ms_max": max(r["ttft_ms"] for r in rows),
            "tok_s_median": statistics.median(r["tok_s"] for r in rows),
            "tokens_mean": statistics.mean(r["tokens"] for r in rows), "runs": len(rows)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: Path, threads: int) -> tuple[subprocess.Popen, str]:
    import httpx2

    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(model),
                             "--host", "127.0.0.1", "--port", str(port), "--n_threads",
                             str(threads), "--n_ctx", "2048"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    end = time.monotonic() + 60
    while time.monotonic() < end:
        try:
            if httpx2.get(f"{url}/models", timeout=1.0).status_code == 200:
                return proc, url
        except httpx2.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("llama_cpp.server did not start")


def bench_router(n: int = 2000) -> dict:
    from gamgin_llm.core import Dialogue, DialogueConfig
    from gamgin_llm.memory import ConversationMemory
    from gamgin_llm.router import StopHandler

    h = StopHandler()
    texts = ["安静", "stop", "把客厅的灯打开", "What is the weather like today?", "别说了！"]
    t0 = time.perf_counter()
    for i in range(n):
        h.handle(texts[i % len(texts)], "zh")
    per_call_us = (time.perf_counter() - t0) / n * 1e6
    d = Dialogue(None, DialogueConfig(), ConversationMemory(500, 0, len), fast_paths=[h],
                 log=lambda s: None)
    t0 = time.perf_counter()
    for _ in range(n // 4):
        d.respond("安静", "zh", lambda: False, lambda p: None)
    turn_us = (time.perf_counter() - t0) / (n // 4) * 1e6
    return {"stop_handler_us": per_call_us, "fast_path_turn_us": turn_us}


def bench_node(threads: int, timeout: float = 60.0) -> dict:
    """RSS of a real llm_node process, idle and after a turn; TTFT over DDS
    (transcript published -> first TokenChunk received)."""
    import psutil
    import rclpy

    from gamgin_common import qos
    from gamgin_common.testing import NodeProcess, test_env, unique_domain_id, wait_for
    from gamgin_interfaces.msg import TokenChunk, Transcript

    domain = unique_domain_id()
    env = test_env(domain)
    node = NodeProcess("gamgin_llm", "llm_node", "llm", env,
                       params={"n_threads": threads, "temperature": 0.0}).start()
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain)
    probe = rclpy.create_node("bench_llm_probe", namespace="/gamgin", context=ctx)
    got: dict[int, list[tuple[float, TokenChunk]]] = {}
    probe.create_subscription(TokenChunk, "tokens",
                              lambda m: got.setdefault(m.turn_id, []).append(
                                  (time.perf_counter(), m)), qos.TOKENS)
    pub = probe.create_publisher(Transcript, "transcript", qos.EVENTS)
    from rclpy.executors import SingleThreadedExecutor

    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(probe)
    import threading

    threading.Thread(target=ex.spin, daemon=True).start()
    out: dict = {}
    try:
        if not wait_for(lambda: pub.get_subscription_count() > 0 and "ready" in node.log(),
                        timeout):
            raise RuntimeError(f"llm_node did not come up:\n{node.log()[-2000:]}")
        time.sleep(1.0)
        proc = psutil.Process(node.proc.pid)
        out["rss_idle_mb"] = proc.memory_info().rss / 1e6
        ttfts = []
        for i, text in enumerate(PROMPTS[:3], start=1):
            t0 = time.perf_counter()
            pub.publish(Transcript(turn_id=i, text=text, language="en", is_final=True))
            if not wait_for(lambda i=i: any(m.is_final for _, m in got.get(i, [])), timeout):
                raise RuntimeError(f"no reply for turn {i}")
            chunks = [t for t, m in got[i] if m.text]
            if chunks:
                ttfts.append((chunks[0] - t0) * 1000)
        out["dds_ttft_ms_median"] = statistics.median(ttfts) if ttfts else None
        out["rss_after_turns_mb"] = proc.memory_info().rss / 1e6
    finally:
        ex.shutdown()
        probe.destroy_node()
        rclpy.try_shutdown(context=ctx)
        node.stop()
    return out


# --compare: the packaged models side by side, each in a process of its own (clean RSS)
COMPARE = {  # name: (file under models/, languages it speaks, grammar-constrained tools)
    "qwen2.5-0.5b": ("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", ["en", "zh"], False),
    "qwen2.5-1.5b": ("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", ["en", "zh"], False),
    "smollm2-135m": ("smollm2-135m-instruct.gguf", ["en"], True),
}
QUALITY = Path(__file__).with_name("bench_quality.yaml")


def judge(item: dict, reply: str) -> dict:
    """The rules bench_quality.yaml defines: language, length, must-mention."""
    from gamgin_llm.language import cjk_ratio

    letters = [c for c in reply if c.isalpha()]
    zh = cjk_ratio(reply) >= 0.6 if letters else False
    lang_ok = zh if item["lang"] == "zh" else (bool(letters) and cjk_ratio(reply) == 0.0)
    must = [m.lower() for m in item.get("must") or []]
    return {"lang_ok": lang_ok, "short_ok": 0 < len(reply.strip()) <= item["max_chars"],
            "must_ok": not must or any(m in reply.lower() for m in must)}


def compare_one(name: str, threads: int) -> dict:
    """One model through the product's dialogue (persona, bilingual head, tools in the
    prompt, 2-sentence replies): load, head prefill, per-turn first token / first words /
    tokens per second, memory, and the quality rules."""
    import psutil
    import yaml

    from gamgin_llm.backends import make_backend
    from gamgin_llm.core import Dialogue, DialogueConfig
    from gamgin_llm.memory import ConversationMemory
    from gamgin_llm.node import DEFAULT_PROMPT, DEFAULT_PROMPT_ZH
    from gamgin_llm.tools import ToolRegistry, device_context, register_device_tools

    file, langs, grammar = COMPARE[name]
    t0 = time.perf_counter()
    backend = make_backend("llama_cpp", model_path=resolve_model(file), n_threads=threads,
                           n_ctx=2048, constrain_tools=grammar)
    backend.load()
    out: dict = {"model": name, "file": file, "load_s": time.perf_counter() - t0}
    devices = {"living_room_light": {"name_en": "living room light", "name_zh": "客厅灯",
                                     "room": "living_room", "type": "light",
                                     "params": ["brightness"]},
               "tv": {"name_en": "tv", "name_zh": "电视", "room": "living_room",
                      "type": "media_player", "params": ["volume"]}}
    reg = ToolRegistry()
    nothing = lambda _a: {"ok": False, "message": "bench: no devices"}  # noqa: E731
    register_device_tools(reg, lambda: devices, nothing, nothing, nothing)
    cfg = DialogueConfig(system_prompt=DEFAULT_PROMPT, system_prompt_zh=DEFAULT_PROMPT_ZH,
                         temperature=0.0, model_languages=tuple(langs), turn_timeout_s=120.0)
    d = Dialogue(backend, cfg, ConversationMemory(768, 0.0, backend.count_tokens), reg,
                 tool_context=lambda: device_context(devices), log=lambda _s: None)
    t0 = time.perf_counter()
    d.warm()
    out["head_prefill_s"] = time.perf_counter() - t0
    items = yaml.safe_load(QUALITY.read_text(encoding="utf-8"))["items"]
    rows = []
    for item in items:
        d.memory.reset()
        r = d.respond(item["text"], item["lang"], lambda: False, lambda _p: None)
        gen = r.elapsed_s - (r.ttft_s or r.elapsed_s)
        rows.append({"lang": item["lang"], "text": item["text"], "reply": r.text,
                     "route": r.route, "ttft_ms": 1000 * r.ttft_s if r.ttft_s else None,
                     "first_words_ms": r.timings.get("first_emit"),
                     "tok_s": (r.tokens - 1) / gen if r.tokens and r.tokens > 1 and gen > 0
                     else None, **judge(item, r.text)})
    mem = psutil.Process().memory_full_info()
    out.update(rss_mb=mem.rss / 1e6, pss_mb=mem.pss / 1e6, rows=rows)

    def med(key: str) -> float | None:
        xs = [r[key] for r in rows if r[key] is not None]
        return statistics.median(xs) if xs else None

    out.update(ttft_ms_p50=med("ttft_ms"), first_words_ms_p50=med("first_words_ms"),
               tok_s_p50=med("tok_s"))
    for lang in ("zh", "en"):
        mine = [r for r in rows if r["lang"] == lang]
        out[f"quality_{lang}"] = sum(r["lang_ok"] and r["short_ok"] and r["must_ok"]
                                     for r in mine)
        out[f"n_{lang}"] = len(mine)
        out[f"lang_ok_{lang}"] = sum(r["lang_ok"] for r in mine)
    backend.close()
    return out


def compare(threads: int, names: list[str]) -> int:
    results = []
    for name in names:
        if not resolve_model(COMPARE[name][0]).exists():
            print(f"{name}: {COMPARE[name][0]} not in models/ (skipped; see README: "
                  "scripts/setup --with-qwen1.5b)")
            continue
        proc = subprocess.run([sys.executable, "-m", "gamgin_llm.bench", "--compare-one", name,
                               "--threads", str(threads)], capture_output=True, text=True,
                              timeout=1800)
        if proc.returncode != 0:
            print(f"{name}: failed\n{proc.stderr[-2000:]}")
            continue
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"{'model':<14}{'load s':>8}{'head s':>8}{'TTFT p50':>10}{'words p50':>10}"
          f"{'tok/s':>7}{'RSS MB':>8}{'PSS MB':>8}{'zh ok':>8}{'zh lang':>8}{'en ok':>7}")
    for r in results:
        def f(x, fmt=".0f") -> str:
            return format(x, fmt) if x is not None else "-"
        print(f"{r['model']:<14}{r['load_s']:>8.2f}{r['head_prefill_s']:>8.2f}"
              f"{f(r['ttft_ms_p50']):>10}{f(r['first_words_ms_p50']):>10}"
              f"{f(r['tok_s_p50'], '.1f'):>7}{r['rss_mb']:>8.0f}{r['pss_mb']:>8.0f}"
              f"{r['quality_zh']:>5}/{r['n_zh']:<2}{r['lang_ok_zh']:>5}/{r['n_zh']:<2}"
              f"{r['quality_en']:>4}/{r['n_en']:<2}")
    print("TTFT / words: ms from the end of the question to the first token / the first "
          "words released for speech (prompt head cached); ok = language, length and "
          "must-mention rules of bench_quality.yaml all held")
    out = results_path("bench-llm-compare.json")
    out.write_text(json.dumps({"threads": threads, "cpu_count": os.cpu_count(),
                               "results": results}, indent=2, ensure_ascii=False))
    print(f"wrote {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gamgin bench llm", description=__doc__)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-node", action="store_true", help="no node process / DDS part")
    ap.add_argument("--compare", nargs="*", metavar="MODEL", default=None, choices=list(COMPARE),
                    help=f"the packaged models side by side ({', '.join(COMPARE)}; none "
                         "named = all present): speed, memory, zh/en quality rules")
    ap.add_argument("--compare-one", default="", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.compare_one:
        print(json.dumps(compare_one(args.compare_one, args.threads), ensure_ascii=False))
        return 0
    if args.compare is not None:
        return compare(args.threads, args.compare or list(COMPARE))

    from gamgin_llm.backends import make_backend

    model = resolve_model(args.model)
    results: dict = {"model": str(model), "threads": args.threads, "runs": args.runs,
                     "max_tokens": args.max_tokens, "cpu_count": os.cpu_count(),
                     "loadavg_start": os.getloadavg()[0]}
    t0 = time.perf_counter()
    inproc = make_backend("llama_cpp", model_path=model, n_threads=args.threads)
    inproc.load()
    results["load_s"] = time.perf_counter() - t0
    tool = [{"type": "function", "function": {
        "name": "set_power", "description": "switch a device on or off",
        "parameters": {"type": "object", "additionalProperties": False,
                       "required": ["device_id", "on"],
                       "properties": {"device_id": {"enum": ["kitchen_light", "bedroom_fan"]},
                                      "on": {"type": "boolean"}}}}}]
    proc, url = start_server(model, args.threads)
    server = make_backend("openai", base_url=url)
    variants = {"llama_cpp": (inproc, None), "llama_cpp_tool_grammar": (inproc, tool),
                "openai_server": (server, None)}
    try:
        for b, tools in variants.values():
            _stream_stats(b, "Hi", 4, tools)  # warm-up (buffers, server connection)
        # interleaved, so that load from other processes hits every variant alike
        rows: dict[str, list[dict]] = {k: [] for k in variants}
        for i in range(args.runs):
            for k, (b, tools) in variants.items():
                rows[k].append(_stream_stats(b, PROMPTS[i % len(PROMPTS)], args.max_tokens,
                                             tools))
        for k in variants:
            results[k] = _summary(rows[k])
    finally:
        server.close()
        inproc.close()
        proc.terminate()
        proc.wait(10)
    results["router"] = bench_router()
    if not args.skip_node:
        results["node"] = bench_node(args.threads)
    results["loadavg_end"] = os.getloadavg()[0]

    rows = [("llama_cpp (in-process)", results["llama_cpp"]),
            ("llama_cpp + tool grammar", results["llama_cpp_tool_grammar"]),
            ("openai -> llama_cpp.server", results["openai_server"])]
    print(f"model {model.name}, {args.threads} threads, {args.runs} runs, "
          f"max_tokens {args.max_tokens}, load {results['load_s']:.2f} s, "
          f"load avg {results['loadavg_start']:.1f} -> {results['loadavg_end']:.1f}")
    print(f"{'backend':<28}{'TTFT med ms':>12}{'TTFT max ms':>12}{'tok/s med':>10}{'tokens':>8}")
    for name, r in rows:
        print(f"{name:<28}{r['ttft_ms_median']:>12.0f}{r['ttft_ms_max']:>12.0f}"
              f"{r['tok_s_median']:>10.1f}{r['tokens_mean']:>8.1f}")
    rt = results["router"]
    print(f"router: stop handler {rt['stop_handler_us']:.1f} us/utterance, "
          f"whole fast-path turn {rt['fast_path_turn_us']:.1f} us")
    if "node" in results:
        n = results["node"]
        print(f"node: RSS idle {n['rss_idle_mb']:.0f} MB, after turns "
              f"{n['rss_after_turns_mb']:.0f} MB, TTFT over DDS (median) "
              f"{n['dds_ttft_ms_median']:.0f} ms")
    out = results_path("bench-llm.json")
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
