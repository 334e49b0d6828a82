"""wake_node through the real audio path: WAV -> PulseAudio null sink -> gamgin_audio
mic_node (PortAudio, the sink's monitor) -> audio/mic over DDS -> wake_node -> wake."""

import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from diagnostic_msgs.msg import DiagnosticArray

from gamgin_common import qos, testing
from gamgin_interfaces.msg import AudioChunk, WakeEvent
from gamgin_wake import enroll, synth

pytestmark = pytest.mark.integration

CONFIG = Path(__file__).resolve().parents[3] / "config" / "wake.yaml"
HELD_OUT = synth.TEST_SPEAKERS[0]  # not an enrollment voice


def wav(path: Path, *parts: np.ndarray) -> Path:
    x = np.concatenate([synth.pad(p, 0.3, 0.3) for p in parts])
    sf.write(path, x, synth.RATE, subtype="PCM_16")
    return path


def latest(probe, diags, fqn: str):
    st = probe.diagnostics_of(diags, fqn)
    return st[-1] if st else None


def values(status) -> dict:
    return {kv.key: kv.value for kv in status.values}


@pytest.fixture(scope="module", params=["trained", "fewshot"])
def graph(request, pulse, probe, node_env, tmp_path_factory):
    backend = request.param
    tmp = tmp_path_factory.mktemp(f"wake_{backend}")
    enroll.create_default_enrollment(root=tmp / "data")
    clips = {
        "wake": wav(tmp / "wake.wav", HELD_OUT.say("金坚，把客厅的灯打开")),
        # ordinary speech, with 今天 (jin tian) as a near-sound; the bench covers more
        "other": wav(tmp / "other.wav", HELD_OUT.say("今天天气很好"),
                     HELD_OUT.say("请问现在几点了"),
                     synth.espeak("Turn on the living room light please.", "en-us")),
    }
    env = dict(node_env, GAMGIN_DATA=str(tmp / "data"))
    wakes = probe.collect(WakeEvent, "/gamgin/wake", qos.EVENTS)
    diags = probe.collect(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
    with testing.null_sink("gamgin_test_wake_mic") as mic, testing.NodeProcess(
        "gamgin_audio", "mic_node", "mic", env, params={"pulse_source": f"{mic}.monitor"},
        log_dir=str(tmp),
    ) as mic_node, testing.NodeProcess(
        "gamgin_wake", "wake_node", "wake", env, params_files=[str(CONFIG)],
        params={"backend": backend}, log_dir=str(tmp),
    ) as wake_node:
        def ready() -> bool:
            s = latest(probe, diags, "/gamgin/wake")
            return s is not None and s.level == b"\x00" and s.message.startswith("listening")

        assert testing.wait_for(ready, 60), wake_node.log() + mic_node.log()

        def mic_flowing() -> bool:
            s = latest(probe, diags, "/gamgin/mic")
            return s is not None and int(values(s).get("chunks", "0")) > 20

        assert testing.wait_for(mic_flowing, 20), mic_node.log()
        mic_pub = probe.publisher(AudioChunk, "/gamgin/audio/mic", qos.MIC_AUDIO)
        yield {"backend": backend, "mic": mic, "wakes": wakes, "diags": diags,
               "node": wake_node, "clips": clips, "mic_pub": mic_pub}
        assert wake_node.alive(), wake_node.log()


def speak(graph, clip: str, settle: float = 2.5) -> list:
    """Play a clip into the virtual microphone; the wakes that arrive during it + settle s."""
    before = len(graph["wakes"])
    testing.play_to_sink(graph["clips"][clip], graph["mic"])
    time.sleep(settle)
    return list(graph["wakes"])[before:]


def test_the_enrolled_word_wakes_exactly_once(graph):
    t0 = time.time()
    got = speak(graph, "wake")
    assert len(got) == 1, graph["node"].log()
    w = got[0]
    assert w.keyword == "金坚" and w.backend == graph["backend"] and 0.0 < w.confidence <= 1.0
    assert w.turn_id > 0
    word_end = w.word_end.sec + w.word_end.nanosec * 1e-9
    assert t0 < word_end < time.time(), "word_end is a capture time within the playback"


def test_other_speech_does_not_wake(graph):
    assert speak(graph, "other") == [], graph["node"].log()


def test_bad_audio_is_reported_and_the_node_keeps_listening(graph, probe):
    bad = AudioChunk(sample_rate=16000, channels=1, encoding="mp3", data=b"\x00" * 64)
    graph["mic_pub"].publish(bad)

    def warned() -> bool:
        s = latest(probe, graph["diags"], "/gamgin/wake")
        return s is not None and "bad audio" in s.message and "mp3" in s.message

    assert testing.wait_for(warned, 10), graph["node"].log()
    assert int(values(latest(probe, graph["diags"], "/gamgin/wake"))["bad_chunks"]) >= 1
    time.sleep(2.0)  # past the refractory period of the previous test's wake
    # still listening = the next "金坚" reaches the detector: a wake, or a candidate (a
    # window the first stage took). Whether a Whisper check then accepts it depends on
    # where the window falls (CI-21: the same clip verified at -4.0 in the test above,
    # -5.2 here, the bar -5.0): that is accuracy, which `gamgin bench wake` measures.
    def candidates() -> int:
        return int(values(latest(probe, graph["diags"], "/gamgin/wake")).get("candidates", 0))

    before = candidates()
    woke = speak(graph, "wake")
    assert len(woke) <= 1
    assert woke or testing.wait_for(lambda: candidates() > before, 3), graph["node"].log()


@pytest.mark.parametrize("params, expect", [
    ({}, "no Picovoice AccessKey"),
    ({"access_key": "not-a-real-key", "keyword": "porcupine"}, "initialization failed"),
])
def test_porcupine_without_a_valid_key_reports_why_and_keeps_serving(
        probe, node_env, tmp_path, params, expect):
    env = {k: v for k, v in node_env.items() if k != "PICOVOICE_ACCESS_KEY"}
    diags = probe.collect(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
    name = f"wake_pv_{len(params)}"
    fqn = f"/gamgin/{name}"
    with testing.NodeProcess("gamgin_wake", "wake_node", name, env,
                             params={"backend": "porcupine", **params},
                             log_dir=str(tmp_path)) as node:
        def errored() -> bool:
            s = latest(probe, diags, fqn)
            return s is not None and s.level == b"\x02"

        assert testing.wait_for(errored, 30), node.log()
        msg = latest(probe, diags, fqn).message
        assert expect in msg and "console.picovoice.ai" in msg and "access_key" in msg, msg
        n = len(probe.diagnostics_of(diags, fqn))
        time.sleep(2.5)
        assert node.alive(), node.log()
        assert len(probe.diagnostics_of(diags, fqn)) > n, "still serving /diagnostics"
        assert expect in node.log(), "the reason is in the log too"
