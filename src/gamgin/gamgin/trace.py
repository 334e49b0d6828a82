"""`gamgin trace`: print where the time of each conversation turn went (turn/trace).

    gamgin trace            follow turns as they finish (Ctrl-C to stop)
    gamgin trace --count 1  wait for one turn, print it, exit
"""

from __future__ import annotations

import argparse
import sys

from gamgin_common.stamps import ns_of as ns

STAGES = [("wake", "wake"), ("speech_start", "speech start"), ("speech_end", "speech end"),
          ("first_partial", "first partial"), ("final_transcript", "final transcript"),
          ("first_token", "first token"), ("first_audio", "first audio"),
          ("playback_start", "playback start"), ("end", "end")]


def render(msg, width: int = 40) -> str:
    """A text timeline, in ms relative to the end of the user's speech."""
    ref = ns(msg.speech_end) or ns(msg.wake) or ns(msg.end)
    points = [(label, (ns(getattr(msg, key)) - ref) / 1e6) for key, label in STAGES
              if ns(getattr(msg, key))]
    lines = [f"turn {msg.turn_id}: {msg.outcome}  route={msg.route or '-'}",
             f"  heard: {msg.user_text!r}", f"  said:  {msg.reply_text[:120]!r}"]
    if points:
        lo, hi = min(p for _, p in points), max(p for _, p in points)
        span = max(hi - lo, 1.0)
        for label, ms in points:
            col = int((ms - lo) / span * width)
            lines.append(f"  {label:17s} {ms:+9.0f} ms |{' ' * col}*")
    if msg.first_audio_ms >= 0:
        lines.append(f"  end of speech -> first audio: {msg.first_audio_ms:.0f} ms")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gamgin trace", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=0, help="exit after this many turns")
    args = ap.parse_args(argv)
    import rclpy

    from gamgin_common import qos
    from gamgin_interfaces.msg import TurnTrace

    rclpy.init()
    node = rclpy.create_node("gamgin_trace")
    seen = 0

    def on_trace(msg: TurnTrace) -> None:
        nonlocal seen
        seen += 1
        print(render(msg), flush=True)

    node.create_subscription(TurnTrace, "/gamgin/turn/trace", on_trace, qos.EVENTS)
    try:
        while rclpy.ok() and (not args.count or seen < args.count):
            rclpy.spin_once(node, timeout_sec=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
