"""`gamgin bench bridge`: what the Foxglove bridge costs, idle and while a viewer watches.

Measured twice: with the subprotocol adapter in front of the SDK's server (the default, for
viewers offering foxglove.websocket.v1) and with the SDK listening alone.
A publisher process plays a talking robot on the graph -- microphone chunks at 50/s,
speech chunks at 10/s, a transcript and token stream a second, diagnostics -- while the
bridge runs. CPU of the bridge process is measured with no client connected, then with
a WebSocket client subscribed to every advertised channel. Writes results/bench-bridge.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import threading
import time

from gamgin_common.paths import results_path

TRAFFIC = """
import time, rclpy
from gamgin_common import qos
from gamgin_interfaces.msg import AudioChunk, TokenChunk, Transcript
rclpy.init()
n = rclpy.create_node("bench_traffic")
mic = n.create_publisher(AudioChunk, "/gamgin/audio/mic", qos.MIC_AUDIO)
spk = n.create_publisher(AudioChunk, "/gamgin/audio/speech", qos.SPEECH_AUDIO)
tr = n.create_publisher(Transcript, "/gamgin/transcript", qos.EVENTS)
tok = n.create_publisher(TokenChunk, "/gamgin/tokens", qos.TOKENS)
t0, i = time.monotonic(), 0
while True:
    mic.publish(AudioChunk(seq=i, sample_rate=16000, channels=1, encoding="s16le",
                           data=b"\\0" * 640))
    if i % 5 == 0:
        spk.publish(AudioChunk(turn_id=1, seq=i, sample_rate=24000, channels=1,
                               encoding="s16le", data=b"\\0" * 4800))
    if i % 50 == 0:
        tr.publish(Transcript(turn_id=1, text="turn on the light", is_final=True))
        for k in range(10):
            tok.publish(TokenChunk(turn_id=1, seq=k, text="word "))
    i += 1
    time.sleep(max(0.0, t0 + i * 0.02 - time.monotonic()))
"""


def cpu_percent(pid: int, seconds: float) -> float:
    import psutil

    p = psutil.Process(pid)
    a = p.cpu_times()
    time.sleep(seconds)
    b = p.cpu_times()
    return 100 * ((b.user + b.system) - (a.user + a.system)) / seconds


async def watch_all(port: int, seconds: float) -> int:
    import websockets

    got = 0
    async with websockets.connect(f"ws://127.0.0.1:{port}", max_size=None,
                                  subprotocols=["foxglove.sdk.v1", "foxglove.websocket.v1"]) as ws:
        end = time.monotonic() + seconds
        sub_id = 1
        while time.monotonic() < end:
            try:
                frame = await asyncio.wait_for(ws.recv(), max(0.01, end - time.monotonic()))
            except TimeoutError:
                break
            if isinstance(frame, str):
                msg = json.loads(frame)
                if msg.get("op") == "advertise":
                    subs = [{"id": sub_id + k, "channelId": ch["id"]}
                            for k, ch in enumerate(msg["channels"])]
                    sub_id += len(subs)
                    await ws.send(json.dumps({"op": "subscribe", "subscriptions": subs}))
            else:
                got += 1
    return got


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gamgin bench bridge", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args(argv)
    result: dict = {}
    # with the subprotocol adapter in front of the SDK (the default) and without it
    for legacy in (True, False):
        key = "adapter" if legacy else "sdk_only"
        result[key] = measure(args.seconds, legacy)
        r = result[key]
        print(f"{key:8s} bridge CPU, no viewer:             {r['idle_cpu_percent']:6.2f} %")
        print(f"{key:8s} bridge CPU, viewer on every topic: {r['watched_cpu_percent']:6.2f} % "
              f"({r['messages_forwarded_to_client']} messages forwarded)")
    result["traffic"] = "mic 50/s (640 B), speech 10/s (4.8 kB), 1 transcript + 10 tokens/s"
    out = results_path("bench-bridge.json")
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


def measure(seconds: float, legacy: bool) -> dict:
    from gamgin_common import testing

    env = testing.test_env(testing.unique_domain_id())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    traffic = subprocess.Popen([sys.executable, "-c", TRAFFIC], env=env)
    result: dict = {}
    try:
        with testing.NodeProcess("gamgin_inspect", "bridge_node", "foxglove_bridge", env,
                                 params={"port": port, "discover_period_s": 0.5,
                                         "accept_legacy_subprotocol": legacy}) as bridge:
            time.sleep(4.0)  # start-up and topic discovery
            result["idle_cpu_percent"] = round(cpu_percent(bridge.proc.pid, seconds), 2)
            box: dict = {}
            t = threading.Thread(target=lambda: box.update(
                n=asyncio.run(watch_all(port, seconds + 3))))
            t.start()
            time.sleep(2.0)  # connected and subscribed
            result["watched_cpu_percent"] = round(cpu_percent(bridge.proc.pid, seconds), 2)
            t.join()
            result["messages_forwarded_to_client"] = box.get("n", 0)
    finally:
        traffic.kill()
    return result


if __name__ == "__main__":
    sys.exit(main())
