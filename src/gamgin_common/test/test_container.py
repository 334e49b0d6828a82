"""Several stage nodes in one process (gamgin_common.container), as graph.yaml's `process`."""

import signal
import subprocess
import time
from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticArray

from gamgin_common import qos, testing
from gamgin_common.container import ContainerError, parse
from gamgin_common.paths import find_executable

CONFIG = Path(__file__).resolve().parents[3] / "config"


def test_each_stage_takes_the_ros_arguments_that_follow_it():
    process, stages = parse(["--process", "base", "--stage", "pa/ea", "--ros-args", "-r",
                             "__node:=a", "--stage", "pb/eb", "--ros-args", "-p", "k:=1"])
    assert process == "base"
    assert [(s.package, s.executable, s.ros_args) for s in stages] == [
        ("pa", "ea", ["--ros-args", "-r", "__node:=a"]),
        ("pb", "eb", ["--ros-args", "-p", "k:=1"])]


@pytest.mark.parametrize(("argv", "message"), [
    ([], "no --stage"),
    (["--ros-args"], "before the first --stage"),
    (["--stage", "mic_node"], "<package>/<executable>"),
])
def test_a_malformed_command_line_is_refused_with_the_reason(argv, message):
    with pytest.raises(ContainerError, match=message):
        parse(argv)


def container(*stages: tuple[str, list[str]]) -> list[str]:
    cmd = [str(find_executable("gamgin_common", "stage_container")), "--process", "pair"]
    for target, args in stages:
        cmd += ["--stage", target, *args]
    return cmd


def test_an_unknown_stage_is_a_clear_error_not_a_traceback(node_env):
    out = subprocess.run(container(("gamgin_audio/nope_node", [])), env=node_env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "no executable 'nope_node' in package 'gamgin_audio'" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.integration
def test_two_nodes_in_one_process_each_with_its_own_parameters_stop_cleanly(
        probe, node_env, tmp_path):
    diags = probe.collect(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
    ros = ["--ros-args", "-r", "__ns:=/gamgin"]
    log = open(tmp_path / "pair.log", "wb")
    proc = subprocess.Popen(container(
        # turn told not to start: a parameter must reach only the node it follows
        ("gamgin_turn/turn_node", [*ros, "-r", "__node:=turn", "--params-file",
                                   str(CONFIG / "turn.yaml"), "-p", "autostart:=false"]),
        ("gamgin_devices/devices_node", [*ros, "-r", "__node:=devices", "--params-file",
                                         str(CONFIG / "devices_params.yaml"),
                                         "-p", f"state_file:={tmp_path / 'devices.json'}"])),
        env=node_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    text = lambda: (tmp_path / "pair.log").read_text(errors="replace")  # noqa: E731

    def last(name: str) -> dict:
        statuses = probe.diagnostics_of(diags, f"/gamgin/{name}")
        return {kv.key: kv.value for kv in statuses[-1].values} if statuses else {}

    try:
        assert testing.wait_for(lambda: last("devices").get("lifecycle") == "active"
                                and last("turn"), 60), text()
        assert last("turn")["lifecycle"] == "unconfigured"
        assert last("turn")["pid"] == last("devices")["pid"] == str(proc.pid)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(5) == 0, text()
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    assert took < 2.0, text()
    assert "Traceback" not in text(), text()
