"""barge_in: true — the user may wake the robot while it is speaking (real audio path)."""

import time
from pathlib import Path

import pytest
import soundfile as sf
from diagnostic_msgs.msg import DiagnosticArray

from gamgin_common import qos, testing
from gamgin_interfaces.msg import TurnState, WakeEvent
from gamgin_wake import enroll, synth

pytestmark = pytest.mark.integration

CONFIG = Path(__file__).resolve().parents[3] / "config" / "wake.yaml"


def test_barge_in_wakes_while_the_robot_speaks(pulse, probe, node_env, tmp_path):
    enroll.create_default_enrollment(root=tmp_path / "data")
    clip = tmp_path / "wake.wav"
    sf.write(clip, synth.pad(synth.TEST_SPEAKERS[0].say("金坚，现在几点了"), 0.3, 0.3),
             synth.RATE, subtype="PCM_16")
    env = dict(node_env, GAMGIN_DATA=str(tmp_path / "data"))
    wakes = probe.collect(WakeEvent, "/gamgin/wake", qos.EVENTS)
    diags = probe.collect(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
    with testing.null_sink("gamgin_test_barge") as mic, testing.NodeProcess(
        "gamgin_audio", "mic_node", "mic", env, params={"pulse_source": f"{mic}.monitor"},
        log_dir=str(tmp_path),
    ), testing.NodeProcess(
        "gamgin_wake", "wake_node", "wake", env, params_files=[str(CONFIG)],
        params={"barge_in": True}, log_dir=str(tmp_path),
    ) as node:
        def ready() -> bool:
            st = probe.diagnostics_of(diags, "/gamgin/wake")
            return bool(st) and st[-1].message.startswith("listening")

        assert testing.wait_for(ready, 60), node.log()
        playback = probe.publisher(TurnState, "/gamgin/audio/playback", qos.EVENTS)
        assert probe.wait_for_subscribers(playback, 1, 20)
        time.sleep(1.0)  # mic stream flowing through the detector
        playback.publish(TurnState(turn_id=7, state=TurnState.SPEAKING, reason="test"))
        time.sleep(0.3)
        testing.play_to_sink(clip, mic)
        time.sleep(2.5)
        assert len(wakes) == 1, node.log()
        assert wakes[0].turn_id > 7
