"""`gamgin say "文本"`: speak a text, for debugging the voice path.

Through the running graph (default): the text is published on /gamgin/tokens as a
TokenChunk stream with a fresh turn_id, a few characters at a time like an LLM, and the
command waits for the tts node's end_of_stream on audio/speech and reports latencies.
``--direct`` synthesizes in this process instead (no ROS graph needed) and plays on the
default sound device, or writes a WAV with ``--wav``.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="gamgin say", description=__doc__.split("\n\n")[0])
    ap.add_argument("text", nargs="+", help="what to say (Chinese, English or mixed)")
    ap.add_argument("--direct", action="store_true",
                    help="synthesize here instead of through the running graph")
    ap.add_argument("--wav", help="with --direct: write a WAV file instead of playing")
    ap.add_argument("--engine", default="espeak", help="with --direct: espeak | piper | xtts")
    ap.add_argument("--voice", default="", help="with --direct and piper: voice .onnx path")
    ap.add_argument("--device", default=None, help="with --direct: sound device to play on")
    ap.add_argument("--token-chars", type=int, default=3, help="characters per TokenChunk")
    ap.add_argument("--token-ms", type=float, default=30.0, help="pause between TokenChunks")
    ap.add_argument("--turn", type=int, default=0, help="turn_id to use (0: a fresh one)")
    ap.add_argument("--timeout", type=float, default=0.0,
                    help="seconds to wait for the spoken answer (0: from the text length)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    text = " ".join(args.text)
    if not text.strip():
        print("gamgin say: nothing to say (empty text)", file=sys.stderr)
        return 2
    return _direct(text, args) if args.direct else _through_graph(text, args)


# ---------------------------------------------------------------------- direct
def _direct(text: str, args: argparse.Namespace) -> int:
    from gamgin_tts.backends import EngineUnavailable, create_engine
    from gamgin_tts.core import SpeechStreamer

    opts = {"voice": args.voice} if args.engine == "piper" and args.voice else {}
    try:
        engine = create_engine(args.engine, **opts)
        fallback = create_engine("espeak") if args.engine != "espeak" else None
    except EngineUnavailable as exc:
        print(f"gamgin say: {exc}", file=sys.stderr)
        return 1
    chunks: list[np.ndarray] = []
    done: list[bool] = []
    streamer = SpeechStreamer(engine, lambda c: (chunks.append(c.samples),
                                                 done.append(True) if c.end_of_stream else None),
                              fallback=fallback)
    t0 = time.monotonic()
    streamer.speak(1, text)
    while not done:
        time.sleep(0.01)
    streamer.close()
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    rate = engine.sample_rate
    print(f"{len(samples) / rate:.2f} s of speech synthesized in {time.monotonic() - t0:.2f} s "
          f"({engine.name}, {rate} Hz)")
    if args.wav:
        import soundfile

        soundfile.write(args.wav, samples, rate, subtype="PCM_16")
        print(f"wrote {args.wav}")
        return 0
    import sounddevice as sd

    sd.play(samples, rate, device=args.device, blocking=True)
    return 0


# ---------------------------------------------------------------------- through the graph
def _through_graph(text: str, args: argparse.Namespace) -> int:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor

    from gamgin_common import audio, codec, qos
    from gamgin_common.stamps import clock_turn_id
    from gamgin_interfaces.msg import AudioChunk, TokenChunk, TurnState

    rclpy.init()
    node = rclpy.create_node(f"say_{int(time.time() * 1000) % 100000}", namespace="/gamgin")
    seen_turns: list[int] = [args.turn]
    tts_seen: list[bool] = []
    got: dict[str, object] = {"chunks": 0, "audio_s": 0.0, "first": None, "eos": None}

    def on_state(msg: TurnState) -> None:
        seen_turns.append(msg.turn_id)

    def on_diag(msg: DiagnosticArray) -> None:
        for st in msg.status:
            if st.name.endswith("/tts"):
                tts_seen.append(True)
                seen_turns.extend(int(kv.value) for kv in st.values
                                  if kv.key == "turn" and kv.value.isdigit())

    turn_box: list[int] = [0]
    decoder = codec.ChunkDecoder()

    def on_speech(msg: AudioChunk) -> None:
        if msg.turn_id != turn_box[0]:
            return
        if msg.data and got["first"] is None:
            got["first"] = time.monotonic()
        got["chunks"] = int(got["chunks"]) + 1
        try:  # s16le or opus: the seconds of audio, not the bytes
            fmt, samples = decoder(msg)
            got["audio_s"] = float(got["audio_s"]) + len(samples) / fmt.sample_rate
        except audio.MalformedAudio:
            pass
        if msg.end_of_stream:
            got["eos"] = time.monotonic()

    node.create_subscription(TurnState, "turn/state", on_state, qos.STATE)
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, qos.DIAGNOSTICS)
    node.create_subscription(AudioChunk, "audio/speech", on_speech, qos.SPEECH_AUDIO)
    pub = node.create_publisher(TokenChunk, "tokens", qos.TOKENS)
    ex = SingleThreadedExecutor()
    ex.add_node(node)

    def spin_until(pred, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end and not pred():
            ex.spin_once(timeout_sec=0.05)
        return pred()

    try:
        def tts_matched() -> bool:
            # tokens has several readers (tts, turn, speech bubble): the first match is not
            # the tts's, and what is published before the tts matched never reaches it
            # (volatile). Wait until every reader the graph knows of, the tts among them,
            # is matched.
            readers = node.get_subscriptions_info_by_topic(pub.topic_name)
            return (any(r.node_name == "tts" for r in readers)
                    and pub.get_subscription_count() >= len(readers))

        if not spin_until(tts_matched, 5.0):
            if pub.get_subscription_count() == 0:
                print("gamgin say: nothing subscribes to /gamgin/tokens; is the graph up "
                      "(`gamgin up`)? Or use --direct.", file=sys.stderr)
                return 1
            print("gamgin say: the tts node is not subscribed to /gamgin/tokens yet; "
                  "speaking anyway", file=sys.stderr)
        # a fresh turn must be newer than anything the graph has seen, or it is ignored as stale;
        # the latched turn/state and the tts node's diagnostics ("turn") tell us the newest
        spin_until(lambda: bool(tts_seen), 2.5)
        # ... and the clock (the wake node's scheme) covers what they no longer show
        turn = turn_box[0] = args.turn or max(max(seen_turns) + 1, clock_turn_id())
        t0 = time.monotonic()
        step = max(1, args.token_chars)
        pieces = [text[i:i + step] for i in range(0, len(text), step)]
        for seq, piece in enumerate([*pieces, ""]):
            msg = TokenChunk(turn_id=turn, seq=seq, text=piece, is_final=seq == len(pieces),
                             finish_reason="stop" if seq == len(pieces) else "", route="say")
            msg.header.stamp = node.get_clock().now().to_msg()
            msg.header.frame_id = "say"
            pub.publish(msg)
            spin_until(lambda: False, args.token_ms / 1000.0)
        t_final = time.monotonic()
        timeout = args.timeout or 10.0 + 0.3 * len(text)
        if not spin_until(lambda: got["eos"] is not None, timeout):
            print(f"gamgin say: turn {turn}: no end of speech within {timeout:.0f} s "
                  f"({got['chunks']} chunks arrived); check `gamgin status` for the tts node",
                  file=sys.stderr)
            return 1
        first = got["first"]
        print(f"turn {turn}: {got['chunks']} chunks, {got['audio_s']:.2f} s of speech; "
              f"first audio {((first or t0) - t0) * 1e3:.0f} ms after the first token "
              f"({'before' if first and first < t_final else 'after'} the last token)")
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
