"""barge_in: true — the user may wake the robot while it is speaking (real audio path)."""

import time
from pathlib import Path

import pytest
import soundfile as sf
from diagnostic_msgs.msg import DiagnosticArray

from gamgin_common import audio, qos, testing
from gamgin_interfaces.msg import AudioChunk, TurnState, WakeEvent
from gamgin_wake import enroll, synth

pytestmark = pytest.mark.integration

CONFIG = Path(__file__).resolve().parents[3] / "config" / "wake.yaml"
# These tests are about when the robot may be woken (the gate, the echo canceller), not
# about how well the word is recognized (that is `gamgin bench wake`'s): the detector
# alone decides, since the Whisper check's int8 score for one clip moves with the CPU
# (CI: -5.23, under the -5.4 bar after the distance bonus, on a clip that passes here).
# Without the check the detector is also stricter on the other side: nothing but the
# detector stands between the robot's own voice and a false wake.
DETECTOR_ONLY = {"verify": False}


def enrolled_with_clip(tmp_path: Path) -> Path:
    """The default enrollment under tmp_path/data, and a user saying "金坚，现在几点了"."""
    enroll.create_default_enrollment(root=tmp_path / "data")
    clip = tmp_path / "wake.wav"
    sf.write(clip, synth.pad(synth.TEST_SPEAKERS[0].say("金坚，现在几点了"), 0.3, 0.3),
             synth.RATE, subtype="PCM_16")
    return clip


def listening(probe, diags) -> bool:
    st = probe.diagnostics_of(diags, "/gamgin/wake")
    return bool(st) and st[-1].message.startswith("listening")


def test_barge_in_wakes_while_the_robot_speaks(pulse, probe, node_env, tmp_path):
    clip = enrolled_with_clip(tmp_path)
    env = dict(node_env, GAMGIN_DATA=str(tmp_path / "data"))
    wakes = probe.collect(WakeEvent, "/gamgin/wake", qos.EVENTS)
    diags = probe.collect(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
    with testing.null_sink("gamgin_test_barge") as mic, testing.NodeProcess(
        "gamgin_audio", "mic_node", "mic", env, params={"pulse_source": f"{mic}.monitor"},
        log_dir=str(tmp_path),
    ), testing.NodeProcess(
        "gamgin_wake", "wake_node", "wake", env, params_files=[str(CONFIG)],
        params={"barge_in": True, **DETECTOR_ONLY}, log_dir=str(tmp_path),
    ) as node:
        assert testing.wait_for(lambda: listening(probe, diags), 60), node.log()
        playback = probe.publisher(TurnState, "/gamgin/audio/playback", qos.EVENTS)
        assert probe.wait_for_subscribers(playback, 1, 20)
        time.sleep(1.0)  # mic stream flowing through the detector
        playback.publish(TurnState(turn_id=7, state=TurnState.SPEAKING, reason="test"))
        time.sleep(0.3)
        testing.play_to_sink(clip, mic)
        time.sleep(2.5)
        assert len(wakes) == 1, node.log()
        assert wakes[0].turn_id > 7


def test_the_wake_word_is_heard_over_the_robots_own_voice(pulse, probe, node_env, tmp_path):
    """One room: the speaker plays into the sink the microphone hears, and the user speaks
    into it too. The robot tells a long story; "金坚，现在几点了" over it must wake it, with
    the shipped wake config (barge-in only once the echo is cancelled). With the
    microphone's canceller off (aec: false) and barge_in: true this fails: with the Whisper
    check the robot's voice masked the word (0 of 3 runs here, 0 of 8 offline); with the
    detector alone it woke on the robot's own story (3 of 3)."""
    clip = enrolled_with_clip(tmp_path)
    story = testing.espeak_wav(" ".join(["This is a long story about a robot dog who loves "
                                         "to talk."] * 5), tmp_path / "story.wav")
    samples, rate = testing.read_wav(story)
    env = dict(node_env, GAMGIN_DATA=str(tmp_path / "data"))
    wakes = probe.collect(WakeEvent, "/gamgin/wake", qos.EVENTS)
    playback = probe.collect(TurnState, "/gamgin/audio/playback", qos.EVENTS)
    diags = probe.collect(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
    speech = probe.publisher(AudioChunk, "/gamgin/audio/speech", qos.SPEECH_AUDIO)
    with testing.null_sink("gamgin_test_room") as room, testing.NodeProcess(
        "gamgin_audio", "mic_node", "mic", env, params={"pulse_source": f"{room}.monitor"},
        log_dir=str(tmp_path),
    ) as mic, testing.NodeProcess(
        "gamgin_audio", "speaker_node", "speaker", env, params={"pulse_sink": room},
        log_dir=str(tmp_path),
    ) as speaker, testing.NodeProcess(
        "gamgin_wake", "wake_node", "wake", env, params_files=[str(CONFIG)],
        params=DETECTOR_ONLY,  # config/wake.yaml: barge_in false, barge_in_with_aec true
        log_dir=str(tmp_path),
    ) as node:
        assert testing.wait_for(lambda: listening(probe, diags), 60), node.log()
        assert probe.wait_for_subscribers(speech, 1, 20), speaker.log()
        step = rate // 10
        for seq, i in enumerate(range(0, len(samples), step)):  # the robot's answer, at 50 %
            speech.publish(AudioChunk(
                turn_id=3, seq=seq, sample_rate=rate, channels=1, encoding="s16le",
                data=audio.encode(0.5 * samples[i:i + step]),
                end_of_stream=i + step >= len(samples)))
        assert testing.wait_for(lambda: any(m.state == TurnState.SPEAKING for m in playback),
                                10), speaker.log()
        time.sleep(5.0)  # the user waits a few sentences, and the canceller learns the room
        assert not wakes, "woke on the robot's own voice"

        def mic_values() -> dict:
            st = probe.diagnostics_of(diags, "/gamgin/mic")
            return {kv.key: kv.value for kv in st[-1].values} if st else {}

        # the canceller found the loop's delay and takes the robot's voice down
        aec = mic_values()
        assert "aec_delay_ms" in aec and float(aec["aec_echo_reduction_db"]) > 10, aec
        # ... and said so on audio/echo_cancelled, which opens the wake gate while it talks
        assert testing.wait_for(lambda: any(
            kv.key == "echo_cancelled" and kv.value == "True"
            for st in probe.diagnostics_of(diags, "/gamgin/wake") for kv in st.values), 5)
        testing.play_to_sink(clip, room)
        assert testing.wait_for(lambda: len(wakes) == 1, 5), node.log() + mic.log()
