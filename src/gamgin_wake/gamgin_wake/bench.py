"""`gamgin bench wake`: false rejects, false accepts per hour, latency and CPU per backend.

The labelled set is synthesized (espeak-ng ``cmn-latn-pinyin`` / ``en-us``) with voices,
speeds and pitches that are NOT the enrollment's, with pink/white noise at several SNRs:
positives say "金坚" (alone, before a command, after 你好); negatives are ordinary
Mandarin and English sentences, many with near-sounds (简单, 见面, 今天, 金钱, 新鲜,
精简...). Each clip is streamed through a fresh backend in 20 ms chunks, as the node
does, with 0.8-1.3 s (random) of silence before and 1.5 s after.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass

import numpy as np

from gamgin_common.paths import resolve_model, results_path
from gamgin_wake import synth
from gamgin_wake.embedding import RATE, speech_bounds

TAIL_S = 1.5
CHUNK = RATE // 50


@dataclass
class Clip:
    label: bool
    text: str
    speaker: str
    noise: str
    audio: np.ndarray
    word_end: int  # positives: sample index where "金坚" ends (from its own synthesis)


def build_set(quick: bool = False, seed: int = 7) -> list[Clip]:
    rng = np.random.default_rng(seed)
    speakers = synth.TEST_SPEAKERS[:4] if quick else synth.TEST_SPEAKERS
    noises = [("clean", None, None), ("pink20", 20.0, "pink"), ("pink10", 10.0, "pink"),
              ("white5", 5.0, "white")]
    if quick:
        noises = noises[:2]
    clips: list[Clip] = []
    for sp in speakers:
        word = sp.say(synth.WAKE_WORD)
        w_b = speech_bounds(word)[1]
        for phrase in synth.WAKE_PHRASES:
            x = sp.say(phrase)
            # "金坚，..." ends where "金坚" alone ends (same voice, same start)
            for name, snr, kind in noises:
                # a random lead so the detector's hops meet the word at any phase, as live
                lead_s = float(rng.uniform(0.8, 1.3))
                lead = int(lead_s * RATE)
                end = lead + (w_b if phrase.startswith(synth.WAKE_WORD) else speech_bounds(x)[1])
                y = synth.pad(x, lead_s, TAIL_S)
                if snr is not None:
                    y = synth.add_noise(y, snr, rng, kind)
                clips.append(Clip(True, phrase, str(sp), name, y, end))
    neg_speakers = speakers[::2] if quick else speakers[:4]
    for text in synth.NEGATIVE_ZH:
        for sp in neg_speakers:
            for name, snr, kind in noises[:2]:
                y = synth.pad(sp.say(text), float(rng.uniform(0.8, 1.3)), TAIL_S)
                if snr is not None:
                    y = synth.add_noise(y, snr, rng, kind)
                clips.append(Clip(False, text, str(sp), name, y, 0))
    for text in synth.NEGATIVE_EN:
        for voice in (["en-us"] if quick else ["en-us", "en-us+f2", "en-gb+m3"]):
            y = synth.pad(synth.espeak(text, voice, 160, 50), 1.0, TAIL_S)
            clips.append(Clip(False, text, voice, "clean", y, 0))
    return clips


def make_fewshot(verify_mode: str | None, threshold: float, min_score: float,
                 distance_weight: float, templates: list[np.ndarray]):
    from gamgin_wake.backends.fewshot import FewShotBackend
    from gamgin_wake.embedding import SpeechEmbedding
    from gamgin_wake.verify import WhisperVerifier

    emb = SpeechEmbedding(resolve_model("speech-embedding.onnx"))
    ver = None
    if verify_mode:
        ver = WhisperVerifier(resolve_model("whisper-base"), synth.WAKE_WORD, verify_mode)
    return lambda: FewShotBackend(synth.WAKE_WORD, templates, emb, threshold, ver, min_score,
                                  distance_weight)


def run_backend(factory, clips: list[Clip]) -> dict:
    fr, fa, lat, neg_s, audio_s, cpu = 0, 0, [], 0.0, 0.0, 0.0
    n_pos = sum(c.label for c in clips)
    misses: list[str] = []
    accepts: list[str] = []
    for c in clips:
        be = factory()
        t0 = time.process_time()
        fired: list[tuple[int, int]] = []  # (samples fed when fired, detection)
        fed = 0
        for i in range(0, len(c.audio), CHUNK):
            chunk = c.audio[i: i + CHUNK]
            fed += len(chunk)
            for _ in be.process(chunk):
                fired.append((fed, 0))
        cpu += time.process_time() - t0
        audio_s += len(c.audio) / RATE
        if c.label:
            if not fired:
                fr += 1
                misses.append(f"{c.speaker} {c.noise} {c.text}")
            else:
                lat.append((fired[0][0] - c.word_end) / RATE)
        else:
            neg_s += len(c.audio) / RATE
            fa += len(fired)
            if fired:
                accepts.append(f"{c.speaker} {c.noise} {c.text}")
    lat_a = np.array(lat) if lat else np.array([np.nan])
    return {
        "positives": n_pos, "false_rejects": fr,
        "false_reject_pct": round(100.0 * fr / max(n_pos, 1), 1),
        "negative_hours": round(neg_s / 3600, 4), "false_accepts": fa,
        "false_accepts_per_hour": round(fa / max(neg_s / 3600, 1e-9), 1),
        "latency_median_s": round(float(np.nanmedian(lat_a)), 3),
        "latency_p90_s": round(float(np.nanpercentile(lat_a, 90)), 3),
        "cpu_pct_of_realtime": round(100.0 * cpu / audio_s, 2),
        "missed": misses, "false_accepted": accepts,
    }


def porcupine_row() -> dict:
    key = os.environ.get("PICOVOICE_ACCESS_KEY", "")
    if not key:
        return {"skipped": "no Picovoice AccessKey (PICOVOICE_ACCESS_KEY) and no 金坚 .ppn here"}
    return {"skipped": "set keyword_paths to a 金坚 .ppn to benchmark porcupine (not automated)"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gamgin bench wake", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a quarter of the set (smoke run)")
    ap.add_argument("--out", default="", help="JSON path (default $GAMGIN_HOME/results/...)")
    args = ap.parse_args(argv)
    out = results_path("bench-wake.json", args.out)  # fails now, not after the run

    from gamgin_wake.enroll import synthesized_takes

    templates = synthesized_takes()
    t0 = time.time()
    clips = build_set(args.quick)
    pos = sum(c.label for c in clips)
    print(f"labelled set: {pos} positive / {len(clips) - pos} negative clips "
          f"({sum(len(c.audio) for c in clips) / RATE / 60:.1f} min) in {time.time() - t0:.0f} s")
    # (verify mode, DTW threshold, verify_min_score, distance_weight): the node's defaults,
    # then each stage alone at its own best operating point on this set
    configs = {
        "fewshot (DTW + Whisper forced)": ("forced", 0.09, -5.4, 10.0),
        "fewshot DTW only": (None, 0.085, 0.0, 0.0),
        "fewshot DTW + Whisper pinyin": ("pinyin", 0.09, 0.75, 0.0),
    }
    rows: dict[str, dict] = {}
    for name, (mode, th, score, weight) in configs.items():
        rows[name] = run_backend(make_fewshot(mode, th, score, weight, templates), clips)
        rows[name]["config"] = {"verify_mode": mode or "off", "threshold": th,
                                "verify_min_score": score, "distance_weight": weight}
        print(f"  {name}: done")
    rows["porcupine"] = porcupine_row()

    print(f"\n{'backend':34s} {'FRR %':>6s} {'FA/h':>7s} {'lat med':>8s} {'lat p90':>8s} "
          f"{'CPU %RT':>8s}")
    for name, r in rows.items():
        if "skipped" in r:
            print(f"{name:34s} skipped: {r['skipped']}")
            continue
        print(f"{name:34s} {r['false_reject_pct']:6.1f} {r['false_accepts_per_hour']:7.1f} "
              f"{r['latency_median_s']:8.3f} {r['latency_p90_s']:8.3f} "
              f"{r['cpu_pct_of_realtime']:8.2f}")
    result = {"set": {"positives": pos, "negatives": len(clips) - pos, "quick": args.quick,
                      "enrollment": ", ".join(str(s) for s in synth.ENROLL_SPEAKERS),
                      "cores": os.cpu_count()},
              "backends": rows}
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
