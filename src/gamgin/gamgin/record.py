"""`gamgin record`: write a conversation's topics to a rosbag2-compatible MCAP file.

    gamgin record                      -> recordings/<time>.mcap, the default topics
    gamgin record -o talk.mcap --topics /gamgin/audio/mic /gamgin/transcript

The file holds the raw CDR of each message with its ros2msg schema (profile "ros2"), so
it opens in Foxglove/Lichtblick and in `ros2 bag` on a ROS machine, and `gamgin replay`
feeds its microphone audio back through the graph. Ctrl-C (or --seconds) ends it.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path

from gamgin_common.paths import ensure_writable, os_reason

DEFAULT_TOPICS = [
    "/gamgin/audio/mic", "/gamgin/wake", "/gamgin/transcript", "/gamgin/tokens",
    "/gamgin/reply", "/gamgin/audio/speech", "/gamgin/audio/playback", "/gamgin/turn/state",
    "/gamgin/turn/trace", "/gamgin/devices/state", "/diagnostics",
]


class McapRecorder:
    """Raw subscriptions -> MCAP channels. Topics are picked up when they appear."""

    def __init__(self, node, path: Path, topics: list[str]) -> None:
        from mcap.writer import CompressionType, Writer

        try:
            import zstandard  # noqa: F401

            compression = CompressionType.ZSTD
        except ImportError:
            compression = CompressionType.NONE
        self.node, self.topics = node, topics
        self._file = open(path, "wb")
        self.writer = Writer(self._file, compression=compression)
        self.writer.start(profile="ros2", library="gamgin")
        self._channels: dict[str, int] = {}
        self._subs: list = []
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def discover(self) -> None:
        from gamgin_common import qos
        from gamgin_common.schemas import message_class, ros2msg_schema

        for topic, types in self.node.get_topic_names_and_types():
            if topic not in self.topics or topic in self._channels:
                continue
            type_name = types[0]
            # named pkg/msg/Type, as rosbag2 writes it: viewers pick their panels by it
            schema_id = self.writer.register_schema(
                type_name, "ros2msg", ros2msg_schema(type_name).encode())
            with self._lock:
                self._channels[topic] = self.writer.register_channel(topic, "cdr", schema_id)
            self._subs.append(self.node.create_subscription(
                message_class(type_name), topic, lambda raw, t=topic: self._write(t, raw),
                qos.matching(self.node, topic, depth=500),
                raw=True))

    def _write(self, topic: str, raw: bytes) -> None:
        now = time.time_ns()
        with self._lock:
            if self._file.closed:
                return
            self.writer.add_message(self._channels[topic], log_time=now, data=raw,
                                    publish_time=now, sequence=self.counts.get(topic, 0))
            self.counts[topic] = self.counts.get(topic, 0) + 1

    def close(self) -> None:
        with self._lock:
            self.writer.finish()
            self._file.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gamgin record", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", help="MCAP file (default recordings/<time>.mcap)")
    ap.add_argument("--topics", nargs="+", default=DEFAULT_TOPICS)
    ap.add_argument("--seconds", type=float, default=0.0, help="stop after this long (0: Ctrl-C)")
    args = ap.parse_args(argv)
    out = Path(args.output) if args.output else Path(os.environ.get("GAMGIN_HOME", ".")) / \
        "recordings" / time.strftime("%Y%m%d-%H%M%S.mcap")
    try:  # before ROS starts: a bad path is a one-line error, not a traceback
        ensure_writable(out)
    except OSError as exc:
        print(f"gamgin record: cannot write {out} ({os_reason(exc)}); choose another "
              "path with -o", file=sys.stderr)
        return 2

    import rclpy

    rclpy.init()
    node = rclpy.create_node(f"gamgin_record_{os.getpid()}")
    rec = McapRecorder(node, out, args.topics)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"recording {len(args.topics)} topics to {out} (Ctrl-C to stop)", flush=True)
    end = time.monotonic() + args.seconds if args.seconds else float("inf")
    last = 0.0
    try:
        while not stop.is_set() and time.monotonic() < end:
            if time.monotonic() - last > 1.0:
                rec.discover()
                last = time.monotonic()
            rclpy.spin_once(node, timeout_sec=0.05)
    except KeyboardInterrupt:
        pass
    finally:
        rec.close()
        node.destroy_node()
        rclpy.try_shutdown()
    total = sum(rec.counts.values())
    print(f"wrote {total} messages to {out}: " +
          ", ".join(f"{t} {n}" for t, n in sorted(rec.counts.items())), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
