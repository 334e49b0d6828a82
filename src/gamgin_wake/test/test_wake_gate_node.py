"""The self-voice gate in the running wake node, deterministically: the test publishes the
microphone stream itself over DDS (same 20 ms AudioChunks a mic_node sends, stamped with
capture times), so the detector always hears the same samples and what is tested is the
gate's wiring — audio/playback SPEAKING silences the word, IDLE + tail lets it wake.
The real PulseAudio path is covered by test_wake_node.py and the conversation tests."""

import time
from pathlib import Path

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from std_msgs.msg import Bool

from gamgin_common import qos, testing
from gamgin_interfaces.msg import AudioChunk, TurnState, WakeEvent
from gamgin_wake import enroll, synth

pytestmark = pytest.mark.integration

CONFIG = Path(__file__).resolve().parents[3] / "config" / "wake.yaml"
CHUNK = synth.RATE // 50


@pytest.fixture(scope="module")
def wake(probe, node_env, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wake_gate")
    enroll.create_default_enrollment(root=tmp / "data")
    env = dict(node_env, GAMGIN_DATA=str(tmp / "data"))
    wakes = probe.collect(WakeEvent, "/gamgin/wake", qos.EVENTS)
    diags = probe.collect(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
    mic = probe.publisher(AudioChunk, "/gamgin/audio/mic", qos.MIC_AUDIO)
    ref = probe.publisher(AudioChunk, "/gamgin/audio/reference", qos.MIC_AUDIO)
    echo = probe.publisher(Bool, "/gamgin/audio/echo_cancelled", qos.STATE)
    playback = probe.publisher(TurnState, "/gamgin/audio/playback", qos.EVENTS)
    with testing.NodeProcess("gamgin_wake", "wake_node", "wake", env,
                             params_files=[str(CONFIG)], log_dir=str(tmp)) as node:
        def ready() -> bool:
            st = probe.diagnostics_of(diags, "/gamgin/wake")
            return bool(st) and st[-1].level == b"\x00" and st[-1].message.startswith("listening")

        assert testing.wait_for(ready, 60), node.log()
        assert probe.wait_for_subscribers(mic, 1, 20) and probe.wait_for_subscribers(playback)
        assert probe.wait_for_subscribers(ref, 1, 20) and probe.wait_for_subscribers(echo)
        word = synth.pad(synth.TEST_SPEAKERS[0].say("金坚，把客厅的灯打开"), 0.5, 1.0)
        yield {"node": node, "wakes": wakes, "diags": diags, "mic": mic, "playback": playback,
               "ref": ref, "echo": echo, "probe": probe, "word": word, "seq": [0]}
        assert node.alive(), node.log()


def _pcm(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, -1, 1) * 32767).astype("<i2")


def stream(w, x: np.ndarray, played: np.ndarray | None = None) -> list:
    """Send `x` as the microphone would (real time, capture stamps), and `played` as the
    speaker's reference of the same moments if given; the wakes it caused."""
    before = len(w["wakes"])
    pcm = _pcm(x)
    ref = _pcm(np.resize(played, len(x))) if played is not None else None
    clock = w["probe"].node.get_clock()
    t_next = time.monotonic()
    for i in range(0, len(pcm) - CHUNK + 1, CHUNK):
        stamp = clock.now().to_msg()
        if ref is not None:  # the speaker publishes what it plays just ahead of playing it
            r = AudioChunk(seq=w["seq"][0], sample_rate=synth.RATE, channels=1,
                           encoding="s16le", data=ref[i:i + CHUNK].tobytes())
            r.header.stamp = stamp
            w["ref"].publish(r)
        msg = AudioChunk(seq=w["seq"][0], sample_rate=synth.RATE, channels=1, encoding="s16le",
                         data=pcm[i:i + CHUNK].tobytes())
        msg.header.stamp = stamp
        w["mic"].publish(msg)
        w["seq"][0] += 1
        t_next += CHUNK / synth.RATE
        time.sleep(max(0.0, t_next - time.monotonic()))
    time.sleep(1.5)  # the detector's window and its check finish
    return list(w["wakes"])[before:]


def playback(w, state: int) -> None:
    msg = TurnState(turn_id=1, state=state, reason="test")
    msg.header.stamp = w["probe"].node.get_clock().now().to_msg()
    w["playback"].publish(msg)


def suppressed(w, why: str = "self_voice") -> int:
    st = w["probe"].diagnostics_of(w["diags"], "/gamgin/wake")
    vals = {kv.key: kv.value for kv in st[-1].values} if st else {}
    return int(vals.get(f"suppressed_{why}", "0"))


def test_the_word_wakes_when_the_robot_is_quiet(wake):
    got = stream(wake, wake["word"])
    assert len(got) == 1 and got[0].keyword == "金坚", wake["node"].log()


def test_the_word_in_the_robots_own_voice_is_heard_but_does_not_wake(wake):
    time.sleep(2.0)  # past the refractory period of the previous wake
    playback(wake, TurnState.SPEAKING)
    time.sleep(0.2)
    n = suppressed(wake)
    assert stream(wake, wake["word"]) == [], wake["node"].log()
    assert testing.wait_for(lambda: suppressed(wake) > n, 3), wake["node"].log()
    playback(wake, TurnState.IDLE)
    time.sleep(1.0)  # past self_voice_tail_s
    got = stream(wake, wake["word"])
    assert len(got) == 1, wake["node"].log()


def test_with_the_echo_cancelled_the_user_interrupts_but_the_robots_own_word_does_not(wake):
    """The canceller's residual of the robot's own 金坚 (15 dB down) still woke the trained
    detector in the conversation test: a wake heard over the robot's voice is checked
    against what the speaker played."""
    other = synth.TEST_SPEAKERS[1].say("我们一起去公园散步吧，好不好呀，小狗狗")
    time.sleep(2.0)
    wake["echo"].publish(Bool(data=True))
    playback(wake, TurnState.SPEAKING)
    time.sleep(0.2)
    try:
        # the robot itself said it: the speaker's reference holds the same word
        n = suppressed(wake, "own_voice")
        assert stream(wake, wake["word"], played=wake["word"]) == [], wake["node"].log()
        assert testing.wait_for(lambda: suppressed(wake, "own_voice") > n, 3), wake["node"].log()
        # the user says it while the robot says something else: a barge-in
        got = stream(wake, wake["word"], played=other)
        assert len(got) == 1, wake["node"].log()
    finally:
        wake["echo"].publish(Bool(data=False))
        playback(wake, TurnState.IDLE)
