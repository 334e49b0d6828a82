"""`gamgin wake enroll`: record or import 3+ takes of the wake word: templates for the
few-shot backend, and the trained backend's threshold adapted to the owner (adapt.py).

    gamgin wake enroll --mic                      # say it 3 times when asked
    gamgin wake enroll --wav a.wav b.wav c.wav    # any rate/channels; silence is trimmed
    gamgin wake enroll --default                  # synthesized 金坚
    gamgin wake enroll --default --if-missing     # what setup runs: keeps an owner's enrollment

Templates go to <data_dir>/wake/<keyword>/ (data_dir: $GAMGIN_DATA, else <workspace>/data);
a running wake node picks them up on its next configure (restart it, or lifecycle
cleanup + configure).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from gamgin_wake import synth
from gamgin_wake.embedding import RATE
from gamgin_wake.templates import EnrollmentError, keyword_dir, prepare_take, save_templates


def synthesized_takes(keyword: str = synth.WAKE_WORD) -> list[np.ndarray]:
    """The default enrollment: espeak-ng cmn-latn-pinyin, default voice, speeds 130/150/170."""
    return [prepare_take(sp.say(keyword), RATE, f"espeak {sp}") for sp in synth.ENROLL_SPEAKERS]


def create_default_enrollment(keyword: str = synth.WAKE_WORD, root: Path | None = None) -> Path:
    """Write the synthesized enrollment (called by scripts/setup); returns its folder."""
    return save_templates(keyword, synthesized_takes(keyword), "espeak-ng cmn-latn-pinyin",
                          root)


def takes_from_wavs(paths: list[str]) -> list[np.ndarray]:
    import soundfile as sf

    takes = []
    for p in paths:
        try:
            x, rate = sf.read(p, dtype="float32", always_2d=False)
        except Exception as exc:
            raise EnrollmentError(f"{p}: cannot read audio ({exc})") from exc
        takes.append(prepare_take(x, rate, p))
    return takes


def takes_from_mic(n: int, seconds: float, device: str | None) -> list[np.ndarray]:
    import sounddevice as sd

    takes = []
    while len(takes) < n:
        input(f"[{len(takes) + 1}/{n}] press Enter, then say the wake word once ...")
        rec = sd.rec(int(seconds * RATE), samplerate=RATE, channels=1, dtype="float32",
                     device=device or None)
        sd.wait()
        try:
            takes.append(prepare_take(rec[:, 0], RATE, f"take {len(takes) + 1}"))
            print("  ok")
        except EnrollmentError as exc:
            print(f"  {exc} - again")
    return takes


def consistency(takes: list[np.ndarray]) -> list[float]:
    """Each take's mean DTW distance to the others: an outlier is a bad take."""
    from gamgin_common.paths import resolve_model
    from gamgin_wake.backends.fewshot import TEMPLATE_PAD_S
    from gamgin_wake.embedding import SpeechEmbedding, subsequence_dtw

    emb = SpeechEmbedding(resolve_model("speech-embedding.onnx"))
    pad = np.zeros(int(TEMPLATE_PAD_S * RATE), np.float32)
    feats = [emb(np.concatenate([pad, t, pad])) for t in takes]
    return [float(np.mean([subsequence_dtw(a, b)[0] for j, b in enumerate(feats) if j != i]))
            for i, a in enumerate(feats)]


def adapt_trained(keyword: str, takes: list[np.ndarray], root: Path | None) -> None:
    """The trained backend hears the owner: its threshold, adapted to these takes."""
    from gamgin_common.paths import resolve_model
    from gamgin_wake.adapt import adapt, model_path
    from gamgin_wake.embedding import SpeechEmbedding

    try:
        path = model_path(keyword)
        res = adapt(keyword, takes, path, SpeechEmbedding(resolve_model("speech-embedding.onnx")),
                    root)
    except (FileNotFoundError, ValueError) as exc:
        print(f"(trained model not adapted: {exc})")
        return
    change = ("kept" if res["threshold"] == res["model_threshold"]
              else f"lowered from {res['model_threshold']:.2f} (floor {res['floor']:.2f})")
    print(f"trained model {res['model']}: your takes score {res['take_scores']}; threshold "
          f"{res['threshold']:.2f} {change}")
    for i in res["unheard_takes"]:
        print(f"  take {i} scores under even the lowest safe threshold: re-record it, or "
              f"use backend: fewshot (matches your own takes)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gamgin wake enroll", description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--wav", nargs="+", metavar="WAV", help="3+ recordings of the wake word")
    src.add_argument("--mic", action="store_true", help="record the takes from the microphone")
    src.add_argument("--default", action="store_true", help="synthesized 金坚 (espeak-ng)")
    ap.add_argument("--keyword", default=synth.WAKE_WORD, help="wake word (default 金坚)")
    ap.add_argument("--takes", type=int, default=3, help="--mic: how many takes (>= 3)")
    ap.add_argument("--seconds", type=float, default=2.5, help="--mic: length of each take")
    ap.add_argument("--device", default="", help="--mic: input device (sounddevice)")
    ap.add_argument("--data-dir", default="", help="instead of $GAMGIN_DATA / <workspace>/data")
    ap.add_argument("--if-missing", action="store_true",
                    help="do nothing if the keyword is already enrolled (setup: keep the owner's)")
    args = ap.parse_args(argv)
    root = Path(args.data_dir) if args.data_dir else None
    try:
        folder = keyword_dir(args.keyword, root)
        if args.if_missing and any(folder.glob("*.wav")):
            print(f"{args.keyword!r} already enrolled in {folder}; left as is")
            return 0
        if args.default:
            takes, source = synthesized_takes(args.keyword), "espeak-ng cmn-latn-pinyin"
        elif args.wav:
            takes, source = takes_from_wavs(args.wav), "wav: " + " ".join(args.wav)
        else:
            takes, source = takes_from_mic(max(args.takes, 3), args.seconds, args.device), "mic"
        folder = save_templates(args.keyword, takes, source, root)
    except EnrollmentError as exc:
        print(f"enrollment failed: {exc}", file=sys.stderr)
        return 2
    print(f"enrolled {args.keyword!r}: {len(takes)} takes in {folder}")
    if not args.default:
        adapt_trained(args.keyword, takes, root)
    try:
        dist = consistency(takes)
    except Exception as exc:
        print(f"(take consistency not checked: {exc})")
        return 0
    for i, d in enumerate(dist):
        flag = "  <- unlike the others: consider re-recording" if d > 0.08 else ""
        print(f"  take {i}: {len(takes[i]) / RATE:.2f} s, mean distance to others {d:.3f}{flag}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
