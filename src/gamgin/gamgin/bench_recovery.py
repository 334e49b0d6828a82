"""`gamgin bench recovery`: kill a stage in a running graph; how soon is a turn served again?

The graph runs under `gamgin up` (always-on STT, virtual mic and speaker). For each stage
(llm, stt, tts by default) and each of ``--kills`` rounds: wait until the graph is idle,
SIGKILL the stage's process (a crash, not a stop), and at once start turns the way a user
would retry, until one is answered:

- llm, tts: a typed turn (a final ``Transcript`` from source "typed"); if no answer starts
  within ``--attempt-s`` (3 s: a user waits that long before repeating), another one;
- stt: a spoken command played into the microphone, again until one is answered.

Stages are killed in turn (llm, stt, tts, llm, ...), each at most once per 31 s, so every
kill is a first crash, restarted at once (`gamgin up` backs off only a node that crashes
again within 30 s of its start).

Measured from the kill: ``served_s`` = the first audio chunk of an answer on audio/speech
(the user hears the robot again), with when the turn that got it began and its own
end-of-input -> first audio latency; ``active_s`` = the restarted node reports lifecycle
``active`` on /diagnostics (process start + imports + model load + DDS). From the new
node's log: the time its Python started, and ``phases`` its own start-up log lines give.
Prints a table and writes results/bench-recovery.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

STAGES = ("llm", "stt", "tts")
TYPED = "What can you do?"
# short, and heard right in 94/96 takes over voices, speeds and int8 kernels (stt tests)
SPOKEN = "Turn on the TV"
HEALTHY_AFTER_S = 31.0  # gamgin up: a node that ran this long restarts at once again


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gamgin bench recovery", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=5, help="kills per stage")
    ap.add_argument("--stages", default=",".join(STAGES))
    ap.add_argument("--attempt-s", type=float, default=3.0,
                    help="seconds of silence after a typed turn before the user says it again")
    ap.add_argument("--give-up", type=float, default=30.0, help="seconds per kill at most")
    ap.add_argument("--startup-timeout", type=float, default=180.0)
    ap.add_argument("--mode", choices=["both", "standby", "cold"], default="both",
                    help="standby: gamgin up with its spare process; cold: --no-standby; both: "
                         "one after the other in this run, with the ratio")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]

    from gamgin.bench_e2e import GraphRun, make_config, pct, synth_clips
    from gamgin.graph import default_config_dir
    from gamgin_common import qos, testing
    from gamgin_common.paths import results_path
    from gamgin_common.stamps import clock_turn_id
    from gamgin_interfaces.msg import AudioChunk, TokenChunk, Transcript, TurnState

    out = results_path("bench-recovery.json", args.out)
    env = testing.test_env(testing.unique_domain_id())
    os.environ.update(env)
    testing.ensure_pulse()
    tmp = Path(tempfile.mkdtemp(prefix="gamgin-recovery-"))
    (_, clip, clip_s), = synth_clips([SPOKEN], tmp)
    probe = testing.RosProbe("bench_recovery")
    from diagnostic_msgs.msg import DiagnosticArray

    diags = probe.collect(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
    speech = probe.collect(AudioChunk, "/gamgin/audio/speech", qos.SPEECH_AUDIO)
    states = probe.collect(TurnState, "/gamgin/turn/state", qos.STATE)
    playback = probe.collect(TurnState, "/gamgin/audio/playback", qos.EVENTS)
    typed = probe.publisher(Transcript, "/gamgin/transcript", qos.EVENTS)
    tokens = probe.collect(TokenChunk, "/gamgin/tokens", qos.TOKENS)

    since = [0.0]  # diagnostics of an earlier graph (same names) are not this one's

    def status(name: str) -> dict:
        for t, arr in reversed(list(zip(diags.arrivals, list(diags), strict=False))):
            if t < since[0]:
                break
            for s in arr.status:
                if s.name == f"/gamgin/{name}":
                    return {kv.key: kv.value for kv in s.values} | {"_level": s.level[0]}
        return {}

    def active_pid(name: str) -> int | None:
        st = status(name)
        return int(st["pid"]) if st.get("lifecycle") == "active" and "pid" in st else None

    def active_since(name: str, old_pid: int, t0: float) -> float | None:
        """Seconds from t0 to the first /diagnostics of a new process of `name` saying it is
        active (from arrival times, not from our polling)."""
        for t, arr in zip(diags.arrivals, list(diags), strict=False):
            if t < t0:
                continue
            for st in arr.status:
                vals = {kv.key: kv.value for kv in st.values}
                if (st.name == f"/gamgin/{name}" and vals.get("lifecycle") == "active"
                        and vals.get("pid") not in (None, str(old_pid))):
                    return round(t - t0, 2)
        return None

    def idle() -> bool:
        st, pb = list(states), list(playback)
        return ((not st or st[-1].state in (TurnState.IDLE, TurnState.CANCELLED))
                and (not pb or pb[-1].state != TurnState.SPEAKING))

    def run_mode(mode: str) -> list[dict]:
        standby = mode == "standby"
        since[0] = time.monotonic()
        rows: list[dict] = []
        with testing.null_sink("rec_mic") as mic, testing.null_sink("rec_spk") as spk:
            cfg = make_config(default_config_dir(), tmp / f"config-{mode}", mic, spk, "always_on")
            log_dir = tmp / f"logs-{mode}"
            graph_log = tmp / f"graph-{mode}.log"
            run = GraphRun(cfg, env, graph_log,
                           ["wake", "foxglove_bridge", "music", "speech_bubble"], log_dir=log_dir,
                           # the default 10 s before the next standby: its imports then do
                           # not compete with the first turns of the stage that just took over
                           extra=[] if standby else ["--no-standby"])
            glog = lambda: graph_log.read_text(errors="replace")  # noqa: E731
            try:
                names = ["turn", "mic", "speaker", "stt", "llm", "tts", "devices", "knowledge"]
                if not testing.wait_for(lambda: all(active_pid(n) for n in names),
                                        args.startup_timeout):
                    raise RuntimeError(f"graph not ready; see {graph_log}")
                print(f"[{mode}] graph ready; kills per stage: {args.kills}", flush=True)
                time.sleep(3.0)
                last_kill: dict[str, float] = {}
                turn_box = [0]

                def next_turn() -> int:
                    turn_box[0] = max(turn_box[0] + 1, clock_turn_id())
                    return turn_box[0]

                for k in range(args.kills):
                    for stage in stages:
                        # a first crash restarts at once, a second within `healthy_after` (30 s)
                        # backs off: measure first crashes, as a user meets them
                        wait = last_kill.get(stage, 0.0) + HEALTHY_AFTER_S - time.monotonic()
                        if wait > 0:
                            time.sleep(wait)
                        if standby:  # the spare made after the last take-over is ready
                            testing.wait_for(lambda: glog().count("standby: ready")
                                             > glog().count("taken over by the standby"), 60)
                        testing.wait_for(idle, 30)
                        time.sleep(1.0)
                        old = active_pid(stage)
                        n_taken = glog().count("taken over by the standby")
                        n_sp = len(speech)
                        t_kill = last_kill[stage] = time.monotonic()
                        os.kill(old, signal.SIGKILL)
                        served = began = None
                        tries = 0
                        while time.monotonic() - t_kill < args.give_up:
                            tries += 1
                            t_try = time.monotonic()
                            if stage == "stt":
                                testing.play_to_sink(clip, mic)
                                t_end = time.monotonic()
                            else:
                                turn = next_turn()
                                typed.publish(Transcript(turn_id=turn, text=TYPED, language="en",
                                                         confidence=1.0, is_final=True,
                                                         source="typed"))
                                t_end = time.monotonic()

                            def answered(n: int = n_sp) -> bool:
                                return any(len(m.data) for m in speech[n:])

                            def replying(turn: int = turn_box[0], typed_turn: bool = stage != "stt"
                                         ) -> list:
                                return [t for t in tokens if typed_turn and t.turn_id == turn]
                            # an answer starts within ~1 s of the end of a turn's input. While the
                            # LLM is replying, wait for its reply to end (its audio may still come);
                            # if nothing at all happens, the user says it again
                            # a fast-path answer to the spoken command comes ~0.35 s after it ends
                            testing.wait_for(lambda: answered() or replying(),
                                             0.8 if stage == "stt" else args.attempt_s,
                                             interval=0.01)
                            if not answered() and replying():
                                testing.wait_for(lambda: answered() or any(
                                    t.is_final for t in replying()), 8.0, interval=0.01)
                                testing.wait_for(answered, 0.5, interval=0.01)
                            if answered():
                                first = next(t for t, m in zip(
                                    speech.arrivals[n_sp:], speech[n_sp:], strict=False)
                                    if len(m.data))
                                served, began = first - t_kill, t_try - t_kill
                                latency = first - t_end
                                break
                        active = active_since(stage, old, t_kill)
                        row = {"mode": mode, "stage": stage, "kill": k,
                               "standby_took_over": glog().count("taken over by the standby")
                               > n_taken,
                               "served_s": round(served, 2) if served is not None else None,
                               "active_s": round(active, 2) if active is not None else None,
                               "served_turn_began_s": round(began, 2)
                               if began is not None else None,
                               "served_turn_latency_s": round(latency, 2)
                               if served is not None else None,
                               "tries": tries}
                        row.update(startup_phases(log_dir / f"{stage}.log"))
                        rows.append(row)
                        print(f"  [{mode}] {stage:4s} kill {k}: served after "
                              f"{row['served_s']} s (that turn "
                              f"began {row['served_turn_began_s']} s after the kill), active "
                              f"{row['active_s']} s, {tries} tries; {row.get('phases', '')}",
                              flush=True)
                        testing.wait_for(idle, 30)  # the retries' answers end before the next kill
            finally:
                run.stop()
        return rows
    modes = ["standby", "cold"] if args.mode == "both" else [args.mode]
    rows: list[dict] = []
    try:
        for mode in modes:
            rows += run_mode(mode)
    finally:
        probe.close()
    summary: dict = {}
    for mode in modes:
        for stage in stages:
            mine = [r for r in rows if r["mode"] == mode and r["stage"] == stage]
            served = [r["served_s"] for r in mine if r["served_s"] is not None]
            active = [r["active_s"] for r in mine if r["active_s"] is not None]
            summary[f"{mode}/{stage}"] = {
                "kills": len(mine), "served": len(served), "served_s_p50": pct(served, 50),
                "served_s_max": max(served) if served else None,
                "active_s_p50": pct(active, 50),
                "standby_took_over": sum(r.get("standby_took_over", False) for r in mine)}
    if len(modes) == 2:
        for stage in stages:
            a, b = summary[f"standby/{stage}"], summary[f"cold/{stage}"]
            if a["served_s_p50"] and b["served_s_p50"]:
                summary[f"cold_over_standby/{stage}"] = round(
                    b["served_s_p50"] / a["served_s_p50"], 2)
    result = {"config": vars(args), "clip_s": round(clip_s, 2), "rows": rows,
              "summary": summary}
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print("\nmode/stage     kills served took-over  kill->served p50 / max  kill->active p50")
    for key, v in summary.items():
        if isinstance(v, dict):
            print(f"{key:14s} {v['kills']:5d} {v['served']:6d} {v['standby_took_over']:9d}   "
                  f"{v['served_s_p50']:>7} s / {v['served_s_max']} s   {v['active_s_p50']} s")
        else:
            print(f"{key:30s} {v}x")
    print(f"(stt turns are spoken: each served time includes the {clip_s:.1f} s clip)")
    print(f"wrote {out}")
    ok = all(v["served"] == v["kills"] for v in summary.values() if isinstance(v, dict))
    return 0 if ok else 1


def startup_phases(log: Path) -> dict:
    """The last start-up of a node, from its log: 'startup' lines the stage writes."""
    if not log.exists():
        return {}
    lines = log.read_text(errors="replace").splitlines()
    starts = [i for i, ln in enumerate(lines) if "startup:" in ln]
    return {"phases": lines[starts[-1]].split("startup:", 1)[1].strip()} if starts else {}


if __name__ == "__main__":
    sys.exit(main())
