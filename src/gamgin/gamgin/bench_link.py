"""`gamgin bench link`: what the encrypted robot-brain link costs in latency.

Round trips between this host (the robot) and a network namespace (the brain, joined by
a veth pair; needs root) over the three links a split graph can use, in one run:
  udp  unicast UDP to the static peer (`gamgin up --insecure`, ROS_STATIC_PEERS)
  tcp  the link profile of gamgin/pair.py in clear (TCPv4, no TLS: for comparison only)
  tls  the link profile with TLS (`gamgin up` once paired)
  tls_nagle  the same without TCP_NODELAY (not run unless asked: --modes)
A pinger on the robot sends AudioChunks at 50/s -- empty ones ("small": a turn event's
size) and 640 B ones (20 ms of 16 kHz microphone audio) -- and an echo on the brain sends
each one back; the round trip is timed on one clock. The veth adds no wire delay: what
differs between the links is the protocol and crypto work on both ends.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from gamgin_common.paths import results_path

MODES = ("udp", "tcp", "tls", "tls_nagle")
KINDS = {"small": 0, "audio_20ms": 640}  # payload bytes


def _qos():
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    # reliable, as the graph's events are; deep enough that nothing is dropped for space
    return QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)


def echo_main(seconds: float) -> int:
    import rclpy
    from rclpy.executors import ExternalShutdownException

    from gamgin_interfaces.msg import AudioChunk

    rclpy.init()
    node = rclpy.create_node("bench_link_echo")
    pong = node.create_publisher(AudioChunk, "/gamgin/bench/pong", _qos())
    node.create_subscription(AudioChunk, "/gamgin/bench/ping", pong.publish, _qos())
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


def _veth(ifname: str) -> tuple[int, int]:
    stats = Path(f"/sys/class/net/{ifname}/statistics")
    read = lambda f: int((stats / f).read_text())  # noqa: E731
    return (read("rx_bytes") + read("tx_bytes"), read("rx_packets") + read("tx_packets"))


def pinger_main(count: int, veth: str) -> int:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from gamgin_interfaces.msg import AudioChunk

    rclpy.init()
    node = rclpy.create_node("bench_link_pinger")
    ping = node.create_publisher(AudioChunk, "/gamgin/bench/ping", _qos())
    sent: dict[int, float] = {}
    rtt: dict[int, float] = {}

    def on_pong(msg: AudioChunk) -> None:
        t = time.monotonic()
        if msg.seq in sent:
            rtt[msg.seq] = (t - sent[msg.seq]) * 1000

    node.create_subscription(AudioChunk, "/gamgin/bench/pong", on_pong, _qos())
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    spinner = threading.Thread(target=ex.spin, daemon=True)
    spinner.start()
    t0 = time.monotonic()
    # the echo matched both ways: a first ping comes back (warm-up seqs count down from
    # the top, out of the way of the measured ones)
    warm = 2**32 - 1
    while time.monotonic() - t0 < 60 and not any(s >= 2**31 for s in rtt):
        sent[warm] = time.monotonic()
        ping.publish(AudioChunk(seq=warm))
        warm -= 1
        time.sleep(0.2)
    out: dict = {"discovery_s": round(time.monotonic() - t0, 2)}
    if not any(s >= 2**31 for s in rtt):
        print(json.dumps({"error": "the echo never answered"}), flush=True)
        return 1
    time.sleep(1.0)  # past the first matches' bursts
    seq = 0
    for kind, size in KINDS.items():
        data = bytes(size)
        first = seq
        t_next = time.monotonic()
        wire0 = _veth(veth)
        for _ in range(count):
            sent[seq] = time.monotonic()
            ping.publish(AudioChunk(seq=seq, sample_rate=16000, channels=1, encoding="s16le",
                                    data=data))
            seq += 1
            t_next += 0.02  # 50 per second, as the microphone
            time.sleep(max(0.0, t_next - time.monotonic()))
        time.sleep(1.0)
        wire1 = _veth(veth)
        out[kind] = [round(rtt[s], 3) for s in range(first, seq) if s in rtt]
        # both ways on the veth, per round trip: payload, headers, acks, heartbeats
        out[f"{kind}_wire"] = [(wire1[0] - wire0[0]) / count, (wire1[1] - wire0[1]) / count]
    print(json.dumps(out), flush=True)
    ex.shutdown()
    spinner.join(5)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


def run_mode(mode: str, ns: str, robot_ip: str, brain_ip: str, pki: Path, folder: Path,
             count: int) -> dict:
    from gamgin import pair
    from gamgin_common import testing

    env = testing.test_env(testing.unique_domain_id())
    if mode == "udp":
        robot_env = dict(env, ROS_STATIC_PEERS=brain_ip)
        brain_env = dict(env, ROS_STATIC_PEERS=robot_ip)
    else:
        kw = {"tls": mode != "tcp", "nodelay": mode != "tls_nagle"}
        robot = pair.write_link("robot", [brain_ip], pair.host_cert(pki / "robot"),
                                folder / mode / "r",
                                **kw)
        brain = pair.write_link("brain", [robot_ip], pair.host_cert(pki / "brain"),
                                folder / mode / "b", **kw)
        robot_env, brain_env = pair.SlotPicker(robot)(env), brain.env(env)
    me = [sys.executable, "-m", "gamgin.bench_link"]
    echo = subprocess.Popen(["ip", "netns", "exec", ns, *me, "--echo", "--seconds", "600"],
                            env=brain_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        res = subprocess.run([*me, "--pinger", "--count", str(count), "--veth",
                              f"gva{ns.removeprefix('gamgin')}"], env=robot_env,
                             capture_output=True, text=True, timeout=count * 0.05 + 120)
    finally:
        echo.send_signal(signal.SIGINT)
        try:
            echo.wait(10)
        except subprocess.TimeoutExpired:
            echo.kill()
            echo.wait()
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"{mode}: pinger failed: {res.stderr[-2000:]}")
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gamgin bench link", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0, help="per message kind and link")
    ap.add_argument("--modes", default="udp,tcp,tls", help=", ".join(MODES))
    ap.add_argument("--rounds", type=int, default=3, help="each link this many times, in turn")
    ap.add_argument("--out", default=None, help="JSON path (default results/bench-link.json)")
    ap.add_argument("--echo", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--pinger", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--count", type=int, default=500, help=argparse.SUPPRESS)
    ap.add_argument("--veth", default="", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.echo:
        return echo_main(args.seconds)
    if args.pinger:
        return pinger_main(args.count, args.veth)
    out = results_path("bench-link.json", args.out)  # fails now, not after the run
    if os.geteuid() != 0 or not shutil.which("ip"):
        print("gamgin bench link: needs root and iproute2 (a network namespace is the "
              "brain)", file=sys.stderr)
        return 2

    from gamgin import pair
    from gamgin_common import testing

    count = int(args.seconds * 50)
    modes = [m for m in args.modes.split(",") if m in MODES]
    results: dict = {
        "what": "gamgin bench link: round trip robot -> brain -> robot, AudioChunk at 50/s "
                "(reliable QoS on every link), robot on this host, brain in a network "
                "namespace (veth: no wire delay)",
        "date": time.strftime("%Y-%m-%d"), "cores": os.cpu_count(),
        "rounds": args.rounds, "messages_per_kind_and_round": count,
        "load_average_before": [round(x, 2) for x in os.getloadavg()], "links": {}}
    rtts: dict = {m: {k: [] for k in KINDS} for m in modes}
    per_round: dict = {m: {k: [] for k in KINDS} for m in modes}
    discovery: dict = {m: [] for m in modes}
    wire: dict = {m: {k: [] for k in KINDS} for m in modes}
    with tempfile.TemporaryDirectory(prefix="gamgin-bench-link-") as tmp, \
            testing.second_host() as (ns, robot_ip, brain_ip):
        # the brain reaches only the robot's address on the veth: with a default route it
        # reaches every address of this host, and Fast DDS's TCP sends each message to each
        # one (the README's limits), which would be measured instead of the link
        subprocess.run(["ip", "netns", "exec", ns, "ip", "route", "del", "default"],
                       capture_output=True)
        pki = Path(tmp) / "pki"
        pair.init(pki / "robot")  # a throwaway pet: the bench never touches real pairing
        pair.install(pair.issue("brain", pki / "bundle", pki / "robot"), pki / "brain")
        # rounds interleave the links, so a busy moment of the machine hits all of them
        for rnd in range(args.rounds):
            for mode in modes:
                r = run_mode(mode, ns, robot_ip, brain_ip, pki, Path(tmp) / str(rnd), count)
                if "error" in r:  # once more, on a fresh domain (seen once with udp)
                    r = run_mode(mode, ns, robot_ip, brain_ip, pki, Path(tmp) / f"{rnd}b", count)
                if "error" in r:
                    print(f"{mode}: {r['error']}", file=sys.stderr)
                    return 1
                discovery[mode].append(r["discovery_s"])
                for kind in KINDS:
                    rtts[mode][kind] += r[kind]
                    wire[mode][kind].append(r[f"{kind}_wire"])
                    per_round[mode][kind].append(round(float(np.median(r[kind])), 3)
                                                 if r[kind] else None)
                print(f"round {rnd + 1} {mode:4s} "
                      + "  ".join(f"{k} p50 {per_round[mode][k][-1]} ms" for k in KINDS)
                      + f"  (discovery {r['discovery_s']} s)", flush=True)
    links = results["links"]
    for mode in modes:
        links[mode] = {"discovery_s": discovery[mode]}
        for kind in KINDS:
            got = np.array(rtts[mode][kind])
            w = np.mean(np.array(wire[mode][kind]), axis=0)
            # the veth's bytes and packets, both ways, per round trip while pinging: that
            # the messages crossed it (not shared memory) and what each link adds
            links[mode][kind] = {"sent": count * args.rounds, "returned": len(got),
                                 "veth_bytes_per_round_trip": round(float(w[0])),
                                 "veth_packets_per_round_trip": round(float(w[1]), 1),
                                 "p50_per_round": per_round[mode][kind]} | ({
                f"rtt_ms_p{q}": round(float(np.percentile(got, q)), 3) for q in (50, 90, 99)
            } | {"rtt_ms_max": round(float(got.max()), 3)} if len(got) else {})
            k = links[mode][kind]
            print(f"{mode:4s} {kind:10s} rtt p50 {k.get('rtt_ms_p50', float('nan')):7.3f} ms"
                  f"  p90 {k.get('rtt_ms_p90', float('nan')):7.3f}"
                  f"  p99 {k.get('rtt_ms_p99', float('nan')):7.3f}"
                  f"  max {k.get('rtt_ms_max', float('nan')):8.3f}  {k['returned']}/{k['sent']}"
                  f"  veth {k['veth_bytes_per_round_trip']} B in "
                  f"{k['veth_packets_per_round_trip']} packets per round trip")
    ratios: dict = {}
    for a, b in (("tls", "udp"), ("tcp", "udp"), ("tls", "tcp")):
        if a in links and b in links:
            for kind in KINDS:
                for q in ("p50", "p90", "p99"):
                    x, y = links[a][kind].get(f"rtt_ms_{q}"), links[b][kind].get(f"rtt_ms_{q}")
                    if x and y:
                        ratios[f"{a}/{b} {kind} {q}"] = round(x / y, 2)
    results["ratios"] = ratios
    for k, v in ratios.items():
        print(f"{k:28s} x{v}")
    results["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
