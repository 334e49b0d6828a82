"""`gamgin up --no-audio` for real: a typed turn ends when its reply is complete (no
speaker will ever report playback), and `gamgin status` expects only the nodes it started."""

import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticArray

from gamgin.status import selection_file
from gamgin_common import qos, testing
from gamgin_common.stamps import clock_turn_id
from gamgin_interfaces.msg import Transcript, TurnState, TurnTrace

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


def test_no_audio_turns_end_with_the_reply_and_status_ignores_what_was_left_out(
        probe, node_env, tmp_path):
    diags = probe.collect(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
    states = probe.collect(TurnState, "/gamgin/turn/state", qos.STATE)
    traces = probe.collect(TurnTrace, "/gamgin/turn/trace", qos.EVENTS)
    cfg = tmp_path / "config"
    shutil.copytree(ROOT / "config", cfg)
    env = dict(node_env, GAMGIN_CONFIG=str(cfg))
    # the audio nodes are left out by --no-audio; the rest only to spare the 2-core machine
    up = subprocess.Popen(["gamgin", "up", "--no-audio", "--no-bridge", "--no-standby",
                           "--exclude", "wake,stt,knowledge,speech_bubble", "--config", str(cfg),
                           "--log-dir", str(tmp_path / "logs")], env=env,
                          stdout=open(tmp_path / "up.log", "wb"), stderr=subprocess.STDOUT,
                          start_new_session=True)
    log = lambda: (tmp_path / "up.log").read_text(errors="replace")  # noqa: E731

    def active(name: str) -> bool:
        st = probe.diagnostics_of(diags, f"/gamgin/{name}")
        return bool(st) and any(kv.key == "lifecycle" and kv.value == "active"
                                for kv in st[-1].values)
    try:
        assert testing.wait_for(lambda: all(active(n) for n in ("turn", "llm", "tts", "devices")),
                                120), log()
        pub = probe.publisher(Transcript, "/gamgin/transcript", qos.EVENTS)
        assert probe.wait_for_reader(pub, "turn", "llm")
        turn = clock_turn_id()
        t0 = time.monotonic()
        pub.publish(Transcript(turn_id=turn, text="What can you do?", language="en",
                               confidence=1.0, is_final=True, source="typed"))
        assert testing.wait_for(lambda: any(t.turn_id == turn for t in traces), 25), log()
        took = time.monotonic() - t0
        status = subprocess.run(["gamgin", "status", "--wait", "6"], capture_output=True,
                                text=True, env=env, timeout=60)
        recorded = selection_file(node_env["ROS_DOMAIN_ID"]).exists()
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(30)
    assert code == 0, log()
    trace = next(t for t in traces if t.turn_id == turn)
    seq = [(s.state, s.reason) for s in states if s.turn_id == turn]
    print(f"typed turn ended {took:.2f} s after it was sent: {seq}")
    assert trace.outcome == "answered" and trace.reply_text.strip(), (trace, seq)
    assert seq[-1] == (TurnState.IDLE, "reply complete (no speaker)"), seq
    assert TurnState.CANCELLED not in [s for s, _ in seq] and took < 20
    # status: every started node reports; mic, speaker, music and the others left out are
    # neither listed nor missing
    assert status.returncode == 0, status.stdout + status.stderr
    assert "MISSING" not in status.stdout and "/gamgin/speaker" not in status.stdout
    assert "left out by gamgin up: " in status.stdout and "speaker" in status.stdout
    assert recorded and not selection_file(node_env["ROS_DOMAIN_ID"]).exists()
