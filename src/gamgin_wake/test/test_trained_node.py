"""The shipped wake config (trained 金坚 model) through the real audio path: held-out
voices saying held-out sentences wake the robot, held-out near-misses (nearly) do not.

Voices: espeak variants the training recipe never uses; sentences: heldout_wake.yaml
(written without seeing the detector). Accuracy over the whole set is `gamgin bench
wake`'s; this checks the node hears what the bench promises, through PulseAudio, DDS
and the node's own streaming."""

import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from diagnostic_msgs.msg import DiagnosticArray

from gamgin_common import qos, testing
from gamgin_interfaces.msg import WakeEvent
from gamgin_wake import bench, synth, train

pytestmark = pytest.mark.integration

CONFIG = Path(__file__).resolve().parents[3] / "config" / "wake.yaml"
GAP_S = 3.0  # between utterances: past the refractory period (2 s) of the last wake


class Voice:
    """One held-out espeak variant per utterance, in turn."""

    def __init__(self) -> None:
        self.k = 0

    def say(self, text: str, neural: bool = False) -> tuple[np.ndarray, str]:
        v = train.HELDOUT_VARIANTS[self.k % len(train.HELDOUT_VARIANTS)]
        self.k += 1
        lang = synth.MANDARIN if any("\u4e00" <= c <= "\u9fff" for c in text) else "en-us"
        return synth.espeak(text, f"{lang}+{v}", 135 + 7 * (self.k % 5), 35 + 6 * (self.k % 6)), v


def session(path: Path, clips: list[np.ndarray]) -> tuple[Path, list[tuple[float, float]]]:
    """One WAV of the clips with gaps, and each clip's (start, end) in seconds into it."""
    gap = np.zeros(int(GAP_S * synth.RATE), np.float32)
    spans, at = [], 0
    for c in clips:
        spans.append((at / synth.RATE, (at + len(c)) / synth.RATE))
        at += len(c) + len(gap)
    x = np.concatenate([np.concatenate([c, gap]) for c in clips])
    sf.write(path, 0.8 * x / np.max(np.abs(x)), synth.RATE, subtype="PCM_16")
    return path, spans


def woken(wakes: list, t0: float, spans: list[tuple[float, float]]) -> list[bool]:
    """Which utterances a wake belongs to: its word end inside the utterance (+ margins
    for the sink's latency)."""
    ends = [w.word_end.sec + w.word_end.nanosec * 1e-9 - t0 for w in wakes]
    return [any(a - 0.3 <= e <= b + 0.8 for e in ends) for a, b in spans]


def test_held_out_voices_wake_it_and_near_misses_do_not(pulse, probe, node_env, tmp_path):
    texts = yaml.safe_load(bench.HELDOUT_FILE.read_text(encoding="utf-8"))
    voice = Voice()
    said = [t for t in texts["positives"][::10]][:6]
    positives = [bench.positive_audio(voice, t, neural=False)[0] for t in said]
    near = texts["near_miss_zh"][::10][:8] + [t for t in texts["english"] if any(
        w in t.lower() for w in ("gin", "jin", "genuine"))][:2]
    negatives = [train.trim(voice.say(t)[0]) for t in near]
    wakes = probe.collect(WakeEvent, "/gamgin/wake", qos.EVENTS)
    diags = probe.collect(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
    with testing.null_sink("gamgin_test_trained") as mic, testing.NodeProcess(
        "gamgin_audio", "mic_node", "mic", node_env, params={"pulse_source": f"{mic}.monitor"},
        log_dir=str(tmp_path),
    ) as mic_node, testing.NodeProcess(
        "gamgin_wake", "wake_node", "wake", node_env, params_files=[str(CONFIG)],
        log_dir=str(tmp_path),
    ) as node:
        def ready() -> bool:
            st = probe.diagnostics_of(diags, "/gamgin/wake")
            return bool(st) and st[-1].message.startswith("listening for 金坚 (trained")

        assert testing.wait_for(ready, 60), node.log() + mic_node.log()
        time.sleep(1.0)
        wav, spans = session(tmp_path / "near.wav", negatives)
        t0 = time.time()
        testing.play_to_sink(wav, mic)
        time.sleep(1.0)
        # 10 near-miss sentences (今天, 见面, 千万, 金钱...): at most one wakes it. The
        # bench measures what this model does on all 1.7 h of held-out speech (README:
        # near-misses such as 今天 are its false accepts); this bounds it through the
        # whole live path, and fails if the detector wakes on near-sounds as a rule.
        false_wakes = woken(list(wakes), t0, spans)
        assert sum(false_wakes) <= 1, (node.log(), near)
        n = len(wakes)
        wav, spans = session(tmp_path / "pos.wav", positives)
        t0 = time.time()
        testing.play_to_sink(wav, mic)
        time.sleep(1.0)
        # 6 held-out utterances: at most one missed (the bench: 15 % over 480 clips).
        # A near-sound inside one (今天辛苦你了，金坚) may add a wake of its own.
        heard = woken(list(wakes)[n:], t0, spans)
        assert sum(heard) >= 5, (heard, node.log(), said)
        assert all(w.backend == "trained" and w.keyword == "金坚" for w in wakes)
        assert len({w.turn_id for w in wakes}) == len(wakes)
