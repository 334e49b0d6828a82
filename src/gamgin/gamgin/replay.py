"""`gamgin replay FILE.mcap`: feed a recording back through the running graph.

By default only the microphone audio (/gamgin/audio/mic) is replayed, at its original
pace and with fresh header stamps, so the graph hears the conversation again and answers
it anew: a recorded conversation becomes a regression test. Run the graph without its
live microphone meanwhile: `gamgin up --exclude mic`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from gamgin_common import qos

QOS_BY_TOPIC = {
    "/gamgin/audio/mic": qos.MIC_AUDIO, "/gamgin/audio/speech": qos.SPEECH_AUDIO,
    "/gamgin/tokens": qos.TOKENS, "/gamgin/turn/state": qos.STATE,
    "/gamgin/devices/state": qos.DEVICE_STATE,
}


def read_messages(path: str, topics: set[str]):
    """(log_time_ns, topic, type_name, cdr_bytes) in log-time order."""
    from mcap.reader import make_reader

    with open(path, "rb") as f:
        reader = make_reader(f)
        for schema, channel, message in reader.iter_messages(topics=sorted(topics),
                                                             log_time_order=True):
            yield message.log_time, channel.topic, schema.name, message.data


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gamgin replay", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file")
    ap.add_argument("--topics", nargs="+", default=["/gamgin/audio/mic"])
    ap.add_argument("--rate", type=float, default=1.0, help="speed factor (2 = twice as fast)")
    ap.add_argument("--keep-stamps", action="store_true", help="publish the recorded stamps")
    args = ap.parse_args(argv)
    if not os.path.isfile(args.file):
        print(f"gamgin replay: no such file: {args.file}", file=sys.stderr)
        return 2
    if args.rate <= 0:
        print("gamgin replay: --rate must be positive", file=sys.stderr)
        return 2

    import rclpy
    from rclpy.serialization import deserialize_message

    from gamgin_common.schemas import message_class

    rclpy.init()
    node = rclpy.create_node(f"gamgin_replay_{os.getpid()}")
    pubs: dict[str, tuple] = {}
    sent = 0
    t0_log = t0_wall = None
    try:
        for log_time, topic, type_name, data in read_messages(args.file, set(args.topics)):
            if topic not in pubs:
                cls = message_class(type_name)
                pub = node.create_publisher(cls, topic, QOS_BY_TOPIC.get(topic, qos.EVENTS))
                pubs[topic] = (cls, pub)
                end = time.monotonic() + 5
                while pub.get_subscription_count() == 0 and time.monotonic() < end:
                    time.sleep(0.05)  # give the graph a moment to match the new publisher
            cls, pub = pubs[topic]
            if t0_log is None:
                t0_log, t0_wall = log_time, time.monotonic()
            delay = t0_wall + (log_time - t0_log) / 1e9 / args.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            msg = deserialize_message(data, cls)
            if not args.keep_stamps and hasattr(msg, "header"):
                msg.header.stamp = node.get_clock().now().to_msg()
            pub.publish(msg)
            sent += 1
    except KeyboardInterrupt:
        pass
    except Exception as exc:
        print(f"gamgin replay: cannot read {args.file}: {exc}", file=sys.stderr)
        return 1
    finally:
        time.sleep(0.5)  # let reliable delivery finish before the publishers go
        node.destroy_node()
        rclpy.try_shutdown()
    print(f"replayed {sent} messages from {args.file}", flush=True)
    return 0 if sent else 1


if __name__ == "__main__":
    sys.exit(main())
