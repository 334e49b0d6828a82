"""`gamgin up` for real: node processes, restart after a crash, clean Ctrl-C."""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray

from gamgin_common import qos, testing

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


def audio_config(tmp_path: Path, mic_sink: str, speaker_sink: str) -> Path:
    cfg = tmp_path / "config"
    shutil.copytree(ROOT / "config", cfg)
    params = yaml.safe_load((cfg / "audio.yaml").read_text())
    params["/gamgin/mic"]["ros__parameters"]["pulse_source"] = f"{mic_sink}.monitor"
    params["/gamgin/speaker"]["ros__parameters"]["pulse_sink"] = speaker_sink
    (cfg / "audio.yaml").write_text(yaml.safe_dump(params, allow_unicode=True))
    graph = yaml.safe_load((cfg / "graph.yaml").read_text())
    graph["nodes"] = [n for n in graph["nodes"] if n["name"] in ("mic", "speaker")]
    (cfg / "graph.yaml").write_text(yaml.safe_dump(graph, allow_unicode=True))
    return cfg


def latest_pid(probe, diags, fqn: str) -> int | None:
    statuses = probe.diagnostics_of(diags, fqn)
    for s in reversed(statuses):
        if s.message.startswith(("capturing", "playing")):
            return int({kv.key: kv.value for kv in s.values}["pid"])
    return None


def active_pid(probe, diags, fqn: str) -> int | None:
    """The pid of the node's process if its latest /diagnostics say it is active."""
    statuses = probe.diagnostics_of(diags, fqn)
    vals = {kv.key: kv.value for kv in statuses[-1].values} if statuses else {}
    return int(vals["pid"]) if vals.get("lifecycle") == "active" else None


def start_up(args: list[str], env: dict, tmp_path: Path) -> subprocess.Popen:
    log = open(tmp_path / "up.log", "wb")
    return subprocess.Popen(["gamgin", "up", *args], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def test_up_starts_the_graph_restarts_a_crashed_node_and_stops_cleanly(
        pulse, probe, node_env, tmp_path):
    diags = probe.collect(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
    with testing.null_sink("gamgin_up_mic") as mic, testing.null_sink("gamgin_up_spk") as spk:
        cfg = audio_config(tmp_path, mic, spk)
        up = start_up(["--config", str(cfg), "--log-dir", str(tmp_path / "logs")], node_env,
                      tmp_path)
        log = lambda: (tmp_path / "up.log").read_text(errors="replace")  # noqa: E731
        try:
            assert testing.wait_for(lambda: latest_pid(probe, diags, "/gamgin/mic") and
                                    latest_pid(probe, diags, "/gamgin/speaker"), 30), log()
            first = latest_pid(probe, diags, "/gamgin/speaker")
            os.kill(first, signal.SIGKILL)  # a crash, not a polite stop
            t0 = time.monotonic()
            assert testing.wait_for(
                lambda: (latest_pid(probe, diags, "/gamgin/speaker") or first) != first, 15), log()
            restart_s = time.monotonic() - t0
            assert restart_s < 10
            children = [latest_pid(probe, diags, "/gamgin/mic"),
                        latest_pid(probe, diags, "/gamgin/speaker")]
        finally:
            up.send_signal(signal.SIGINT)
            code = up.wait(20)
    assert code == 0, log()
    assert not [p for p in children if psutil.pid_exists(p) and
                psutil.Process(p).status() != psutil.STATUS_ZOMBIE], "children left running"
    text = log()
    assert "restarting in" in text and "stopped" in text
    from gamgin.graph import load_graph

    # a log per process: the mic's own, or that of the process it is composed in
    mic_process = next(u.name for u in load_graph(cfg / "graph.yaml").units()
                       if "mic" in [n.name for n in u.nodes])
    assert (tmp_path / "logs" / f"{mic_process}.log").exists()


def test_up_no_audio_starts_no_audio_node(probe, node_env, tmp_path):
    cfg = tmp_path / "config"
    shutil.copytree(ROOT / "config", cfg)
    up = start_up(["--no-audio", "--config", str(cfg)], node_env, tmp_path)
    time.sleep(4)
    up.send_signal(signal.SIGINT)
    assert up.wait(30) == 0
    text = (tmp_path / "up.log").read_text()
    assert "(no audio)" in text
    assert "as /gamgin/mic" not in text and "as /gamgin/speaker" not in text


def test_up_is_closed_to_the_network_by_default(node_env):
    from gamgin.cli import graph_env

    env = {k: v for k, v in node_env.items() if k != "ROS_AUTOMATIC_DISCOVERY_RANGE"}
    os_env = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        assert graph_env()["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
        assert graph_env(lan=True)["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "SUBNET"
    finally:
        os.environ.clear()
        os.environ.update(os_env)


def test_a_crashed_stage_is_taken_over_by_the_standby_and_serves(probe, node_env, tmp_path):
    """tts killed: the pre-started standby process becomes the tts (same pid as the standby
    that said it was ready), speaks the next answer, and a new standby is made."""
    from gamgin_common.stamps import clock_turn_id
    from gamgin_interfaces.msg import AudioChunk, TokenChunk

    diags = probe.collect(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
    speech = probe.collect(AudioChunk, "/gamgin/audio/speech", qos.SPEECH_AUDIO)
    cfg = tmp_path / "config"
    shutil.copytree(ROOT / "config", cfg)
    up = start_up(["--no-audio", "--only", "turn,tts", "--standby-delay", "0.5", "--config",
                   str(cfg), "--log-dir", str(tmp_path / "logs")], node_env, tmp_path)
    log = lambda: (tmp_path / "up.log").read_text(errors="replace")  # noqa: E731

    def tts_pid() -> int | None:
        return active_pid(probe, diags, "/gamgin/tts")
    try:
        assert testing.wait_for(lambda: tts_pid() and "standby: ready" in log(), 60), log()
        first = tts_pid()
        os.kill(first, signal.SIGKILL)
        assert testing.wait_for(lambda: (tts_pid() or first) != first, 20), log()
        taken = [ln for ln in log().splitlines() if "taken over by the standby" in ln]
        assert taken and f"(pid {tts_pid()})" in taken[0], log()
        assert "standby, process+imports" in (tmp_path / "logs" / "tts.log").read_text()
        pub = probe.publisher(TokenChunk, "/gamgin/tokens", qos.TOKENS)
        assert probe.wait_for_reader(pub, "turn", "tts")
        n = len(speech)
        pub.publish(TokenChunk(turn_id=clock_turn_id(), seq=0, text="Hello, I am back.",
                               is_final=True, finish_reason="stop"))
        assert testing.wait_for(lambda: any(len(m.data) for m in speech[n:]), 15), log()
        # a new spare is made for the next crash
        assert testing.wait_for(lambda: log().count("standby: ready") >= 2, 60), log()
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(30)
    assert code == 0, log()


def test_a_turn_lost_with_a_crashed_llm_is_answered_by_the_restarted_one(probe, node_env,
                                                                          tmp_path):
    """The user speaks while the LLM is dead: the turn node gives the final transcript again
    to the LLM that takes over, and the turn is answered, not left to time out."""
    from gamgin_common.stamps import clock_turn_id
    from gamgin_interfaces.msg import TokenChunk, Transcript

    diags = probe.collect(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
    tokens = probe.collect(TokenChunk, "/gamgin/tokens", qos.TOKENS)
    cfg = tmp_path / "config"
    shutil.copytree(ROOT / "config", cfg)
    up = start_up(["--no-audio", "--only", "turn,llm,tts", "--standby-delay", "0.5",
                   "--config", str(cfg), "--log-dir", str(tmp_path / "logs")], node_env, tmp_path)
    log = lambda: (tmp_path / "up.log").read_text(errors="replace")  # noqa: E731

    def llm_pid() -> int | None:
        return active_pid(probe, diags, "/gamgin/llm")
    try:
        assert testing.wait_for(lambda: llm_pid() and "standby: ready" in log(), 120), log()
        pub = probe.publisher(Transcript, "/gamgin/transcript", qos.EVENTS)
        assert probe.wait_for_reader(pub, "turn", "llm")
        first = llm_pid()
        os.kill(first, signal.SIGKILL)
        turn = clock_turn_id()
        pub.publish(Transcript(turn_id=turn, text="What can you do?", language="en",
                               confidence=1.0, is_final=True, source="typed"))
        t0 = time.monotonic()
        assert testing.wait_for(lambda: any(t.turn_id == turn and t.text for t in tokens),
                                30), log()
        print(f"the lost turn was answered {time.monotonic() - t0:.2f} s after it was said")
        assert (llm_pid() or first) != first
        assert "sent to it again" in log(), log()  # the turn node says it (in base)
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(30)
    assert code == 0, log()
