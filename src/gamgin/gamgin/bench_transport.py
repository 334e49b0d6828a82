"""`gamgin bench transport`: AudioChunk latency between processes, and the CPU the audio
nodes use at real time. Prints a table and writes results/bench-transport.json.

Latency is measured between two real processes over Fast DDS on this host: a
publisher process stamps each chunk with the wall clock just before publishing, this
process subtracts it on arrival (same clock, so no sync error).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from gamgin_common.paths import results_path

PROFILES = {
    # name: (sample_rate, chunk_ms, paced) -- paced = real time, else a burst
    "mic 16k/20ms real-time": (16000, 20, True),
    "speech 24k/100ms real-time": (24000, 100, True),
    "speech 24k/100ms burst": (24000, 100, False),
}


def publisher_main(args: argparse.Namespace) -> int:
    import rclpy

    from gamgin_common import qos
    from gamgin_interfaces.msg import AudioChunk

    rclpy.init()
    node = rclpy.create_node("bench_transport_pub")
    pub = node.create_publisher(AudioChunk, "/gamgin/bench/audio",
                                qos.SPEECH_AUDIO if args.rate != 16000 else qos.MIC_AUDIO)
    end = time.monotonic() + 15
    while pub.get_subscription_count() < 1 and time.monotonic() < end:
        time.sleep(0.05)
    time.sleep(0.5)
    frames = args.rate * args.chunk_ms // 1000
    payload = (np.random.default_rng(0).standard_normal(frames) * 3000).astype("<i2").tobytes()
    period = args.chunk_ms / 1000
    t_next = time.monotonic()
    for seq in range(args.count):
        msg = AudioChunk(turn_id=1, seq=seq, sample_rate=args.rate, channels=1, encoding="s16le",
                         data=payload, end_of_stream=seq == args.count - 1)
        ns = time.time_ns()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(ns, 1_000_000_000)
        pub.publish(msg)
        if args.paced:
            t_next += period
            time.sleep(max(0.0, t_next - time.monotonic()))
    time.sleep(1.0)
    node.destroy_node()
    rclpy.shutdown()
    return 0


def measure_latency(probe, rate: int, chunk_ms: int, paced: bool, seconds: float,
                    env: dict) -> dict:
    from gamgin_common import qos
    from gamgin_interfaces.msg import AudioChunk

    count = int(seconds * 1000 / chunk_ms)
    lat: list[float] = []

    def cb(msg: AudioChunk) -> None:
        lat.append((time.time_ns() - (msg.header.stamp.sec * 1_000_000_000 +
                                      msg.header.stamp.nanosec)) / 1e6)

    sub = probe.node.create_subscription(AudioChunk, "/gamgin/bench/audio", cb,
                                         qos.SPEECH_AUDIO if rate != 16000 else qos.MIC_AUDIO)
    cmd = [sys.executable, "-m", "gamgin.bench_transport", "--publisher", "--rate", str(rate),
           "--chunk-ms", str(chunk_ms), "--count", str(count)] + (["--paced"] if paced else [])
    t0 = time.monotonic()
    subprocess.run(cmd, env=env, check=True, timeout=seconds + 60)
    wall = time.monotonic() - t0
    probe.node.destroy_subscription(sub)
    arr = np.array(lat) if lat else np.array([np.nan])
    return {"chunks_sent": count, "chunks_received": len(lat),
            "bytes_per_chunk": rate * chunk_ms // 1000 * 2,
            "latency_ms_p50": round(float(np.percentile(arr, 50)), 3),
            "latency_ms_p99": round(float(np.percentile(arr, 99)), 3),
            "latency_ms_max": round(float(np.max(arr)), 3), "wall_s": round(wall, 2)}


def measure_audio_nodes_cpu(probe, env: dict, seconds: float) -> dict:
    """mic_node capturing and speaker_node playing at real time, through null sinks."""
    import psutil

    from gamgin_common import audio, qos, testing
    from gamgin_interfaces.msg import AudioChunk

    got = probe.collect(AudioChunk, "/gamgin/audio/mic", qos.MIC_AUDIO)
    pub = probe.publisher(AudioChunk, "/gamgin/audio/speech", qos.SPEECH_AUDIO)
    with testing.null_sink("bench_mic") as mic, testing.null_sink("bench_spk") as spk, \
            testing.NodeProcess("gamgin_audio", "mic_node", "mic", env,
                                params={"pulse_source": f"{mic}.monitor"}) as m, \
            testing.NodeProcess("gamgin_audio", "speaker_node", "speaker", env,
                                params={"pulse_sink": spk}) as s:
        testing.wait_for(lambda: len(got) > 5 and pub.get_subscription_count() > 0, 30)
        time.sleep(1.0)  # let start-up (imports, model-free) settle before measuring
        procs = {"mic_node": psutil.Process(m.proc.pid), "speaker_node": psutil.Process(s.proc.pid)}
        before = {k: p.cpu_times() for k, p in procs.items()}
        n0 = len(got)
        rate, ms = 24000, 100
        tone = (0.3 * np.sin(2 * np.pi * 220 * np.arange(rate * ms // 1000) / rate)).astype(
            np.float32)
        data = audio.encode(tone)
        t0 = time.monotonic()
        seq = 0
        while time.monotonic() - t0 < seconds:
            pub.publish(AudioChunk(turn_id=1, seq=seq, sample_rate=rate, channels=1,
                                   encoding="s16le", data=data))
            seq += 1
            time.sleep(max(0.0, t0 + seq * ms / 1000 - time.monotonic()))
        wall = time.monotonic() - t0
        after = {k: p.cpu_times() for k, p in procs.items()}
        rss = {k: round(p.memory_info().rss / 1e6, 1) for k, p in procs.items()}
        mic_chunks = len(got) - n0
    cpu = {k: round(100 * ((after[k].user + after[k].system) -
                           (before[k].user + before[k].system)) / wall, 2) for k in procs}
    return {"seconds": round(wall, 1), "cpu_percent_of_one_core": cpu, "rss_mb": rss,
            "mic_chunks_per_s": round(mic_chunks / wall, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gamgin bench transport", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0, help="per latency profile")
    ap.add_argument("--cpu-seconds", type=float, default=15.0)
    ap.add_argument("--out", default=None, help="JSON path (default results/bench-transport.json)")
    ap.add_argument("--publisher", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--rate", type=int, default=16000, help=argparse.SUPPRESS)
    ap.add_argument("--chunk-ms", type=int, default=20, help=argparse.SUPPRESS)
    ap.add_argument("--count", type=int, default=100, help=argparse.SUPPRESS)
    ap.add_argument("--paced", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    out = results_path("bench-transport.json", args.out)  # fails now, not after the run
    if args.publisher:
        return publisher_main(args)

    from gamgin_common import testing

    domain = testing.unique_domain_id()
    env = testing.test_env(domain)
    os.environ.update(env)
    probe = testing.RosProbe("bench_transport")
    results: dict = {"domain_id": domain, "cores": os.cpu_count(), "latency": {}}
    try:
        for name, (rate, ms, paced) in PROFILES.items():
            r = measure_latency(probe, rate, ms, paced, args.seconds, env)
            results["latency"][name] = r
            print(f"{name:28s} p50 {r['latency_ms_p50']:7.3f} ms  p99 {r['latency_ms_p99']:7.3f} ms"
                  f"  max {r['latency_ms_max']:7.3f} ms  {r['chunks_received']}/{r['chunks_sent']}"
                  f" chunks of {r['bytes_per_chunk']} B", flush=True)
        testing.ensure_pulse()
        results["audio_nodes"] = a = measure_audio_nodes_cpu(probe, env, args.cpu_seconds)
        for k, v in a["cpu_percent_of_one_core"].items():
            print(f"{k:28s} CPU {v:6.2f} % of one core at real time, RSS {a['rss_mb'][k]} MB")
        print(f"{'mic chunks/s':28s} {a['mic_chunks_per_s']} (expected 50)")
    finally:
        probe.close()
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
