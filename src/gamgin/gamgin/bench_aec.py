"""`gamgin bench aec`: the microphone's echo canceller (gamgin_audio.aec) on its own.

The robot's voice (espeak, a long story) goes through a room model -- a delay and two
reflections -- into the microphone; each 20 ms block is stamped as the nodes stamp them
(the speaker's reference on its smoothed clock, the microphone's with callback jitter).
Reports, side by side in one run:

- echo reduction per second of robot speech, the delay found, CPU per second of audio;
- the offline wake word ("金坚，现在几点了", synthesized test speakers) said over the robot:
  detected in the raw microphone, after the canceller, and alone (the detector's ceiling).

Prints a table and writes results/bench-aec.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from gamgin_audio.aec import EchoCanceller
from gamgin_common import audio, testing
from gamgin_common.paths import resolve_model, results_path

R = 16000
B = 320
T0 = 1_700_000_000 * 10**9
STORY = " ".join(["This is a long story about a robot dog who loves to talk."] * 3)


def room(far: np.ndarray, delay_s: float, gain: float = 0.6) -> np.ndarray:
    d = int(delay_s * R)
    echo = np.zeros(len(far) + d + 2000, np.float32)
    echo[d:d + len(far)] += gain * far
    echo[d + 480:d + 480 + len(far)] += gain / 3 * far
    echo[d + 1500:d + 1500 + len(far)] -= gain / 8 * far
    return echo


def cancel(ec: EchoCanceller, mic: np.ndarray, ref: np.ndarray, t0: int,
           seed: int = 0) -> tuple[np.ndarray, float]:
    """(output, CPU seconds). The reference is handed over two blocks before it plays."""
    rng = np.random.default_rng(seed)
    out = np.zeros_like(mic)
    ahead = 2 * B
    cpu = 0.0
    for i in range(0, len(mic) - B + 1, B):
        c0 = time.process_time()
        if i + ahead < len(ref):
            ec.add_reference(ref[i + ahead:i + ahead + B], t0 + (i + ahead) * 10**9 // R)
        stamp = t0 + i * 10**9 // R + int(rng.normal(0, 0.003) * 1e9)
        out[i:i + B] = ec.process(mic[i:i + B], stamp)
        cpu += time.process_time() - c0
    return out, cpu


def reduction_per_second(mic: np.ndarray, out: np.ndarray) -> list[float]:
    return [round(10 * float(np.log10(np.mean(mic[j:j + R] ** 2) /
                                      max(np.mean(out[j:j + R] ** 2), 1e-20))), 1)
            for j in range(0, len(mic) - R, R)]


def wake_detector(tmp: Path):
    """The shipped wake config: the trained 金坚 model at its own operating point."""
    from gamgin_wake.adapt import model_path
    from gamgin_wake.backends.trained import TrainedBackend
    from gamgin_wake.classifier import WakeClassifier
    from gamgin_wake.embedding import SpeechEmbedding

    model = WakeClassifier.load(model_path("金坚"))
    emb = SpeechEmbedding(resolve_model("speech-embedding.onnx"), 1)

    def fires(x: np.ndarray) -> bool:
        be = TrainedBackend("金坚", model, emb)
        return any(be.process(x[i:i + B]) for i in range(0, len(x), B))

    return fires


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gamgin bench aec", description=__doc__.split("\n\n")[0])
    ap.add_argument("--speakers", type=int, default=6, help="synthesized users (max 8)")
    ap.add_argument("--out", default=None, help="JSON path (default results/bench-aec.json)")
    args = ap.parse_args(argv)
    out_path = results_path("bench-aec.json", args.out)  # fails now, not after the run
    from gamgin_wake import synth

    tmp = Path(tempfile.mkdtemp(prefix="bench-aec-"))
    far = audio.resample(*testing.read_wav(testing.espeak_wav(STORY, tmp / "robot.wav")), R)
    result: dict = {"robot_speech_s": round(len(far) / R, 2), "rooms": [], "wake": {}}

    print(f"robot voice: {len(far) / R:.1f} s of espeak; room = delay + reflections at "
          "+30 ms (1/3) and +94 ms (-1/8); reference 2 blocks ahead, mic stamps jitter 3 ms")
    print(f"{'delay':>7} {'found':>7} {'CPU % of 1 core':>16}  echo reduction per second (dB)")
    for delay_s in (0.005, 0.06, 0.2, 0.4):
        echo = room(far, delay_s)
        ec = EchoCanceller()
        out, cpu = cancel(ec, echo, far, T0)
        row = {"delay_ms": delay_s * 1000, "found_ms": ec.delay_ms,
               "cpu_pct": round(100 * cpu / (len(echo) / R), 2),
               "reduction_db_per_s": reduction_per_second(echo, out)}
        result["rooms"].append(row)
        found = f"{ec.delay_ms:.1f}" if ec.delay_ms is not None else "-"
        print(f"{delay_s * 1000:>5.0f}ms {found:>7} {row['cpu_pct']:>16}  "
              + " ".join(f"{x:.0f}" for x in row["reduction_db_per_s"]))

    fires = wake_detector(tmp / "data")
    counts = {"alone": 0, "raw": 0, "aec": 0}
    n = min(args.speakers, len(synth.TEST_SPEAKERS))
    for k, sp in enumerate(synth.TEST_SPEAKERS[:n]):
        near = sp.say("金坚，现在几点了")
        echo = room(far, (0.03, 0.12, 0.25, 0.06)[k % 4])
        ec = EchoCanceller()
        cancel(ec, echo, far, T0)  # the robot has talked before: the filter knows the room
        start = int((2.0 + 0.5 * k) * R)
        mic = echo.copy()
        mic[start:start + len(near)] += near[:len(mic) - start]
        alone = np.zeros_like(mic)
        alone[start:start + len(near)] = near[:len(mic) - start]
        t1 = T0 + (len(echo) - len(echo) % B) * 10**9 // R
        cleaned, _ = cancel(ec, mic, far, t1, seed=k)
        hit = {"alone": fires(alone), "raw": fires(mic), "aec": fires(cleaned)}
        for key, v in hit.items():
            counts[key] += int(v)
        print(f"  user {sp}: alone {hit['alone']}, raw mic {hit['raw']}, after aec {hit['aec']}",
              flush=True)
    result["wake"] = {"users": n, **counts}
    print(f"wake word over the robot's voice ({n} users): alone {counts['alone']}/{n}, "
          f"raw microphone {counts['raw']}/{n}, after the canceller {counts['aec']}/{n}")
    out_path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
