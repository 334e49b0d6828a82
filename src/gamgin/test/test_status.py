"""`gamgin status` against real nodes: ERROR with its reason -> exit 1; OK -> 0;
a node of the graph that is not running -> 3."""

import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from gamgin_common import testing

pytestmark = pytest.mark.integration


def graph_of(tmp_path: Path, names: list[str]) -> Path:
    cfg = tmp_path / "config"
    cfg.mkdir()
    nodes = [{"name": n, "package": "gamgin_inspect", "executable": "bridge_node"} for n in names]
    (cfg / "graph.yaml").write_text(yaml.safe_dump({"namespace": "/gamgin", "nodes": nodes}))
    return cfg


def status(env: dict, cfg: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["gamgin", "status", "--wait", "6"], capture_output=True, text=True,
                          env=dict(env, GAMGIN_CONFIG=str(cfg)), timeout=60)


def test_status_reports_a_node_in_error_with_its_reason_and_exits_1(node_env, tmp_path):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    cfg = graph_of(tmp_path, ["foxglove_bridge"])
    with testing.NodeProcess("gamgin_inspect", "bridge_node", "foxglove_bridge", node_env,
                             params={"port": port}, log_dir=str(tmp_path)) as node:
        result = status(node_env, cfg)
        assert node.alive(), "a node in ERROR keeps running"
    busy.close()
    assert result.returncode == 1, result.stdout + result.stderr
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("/gamgin/foxglove_bridge"))
    assert "ERROR" in line and f"127.0.0.1:{port}" in line and "port" in line


def test_status_is_0_when_healthy_and_3_when_a_node_is_missing(node_env, tmp_path):
    cfg = graph_of(tmp_path, ["foxglove_bridge", "not_started"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with testing.NodeProcess("gamgin_inspect", "bridge_node", "foxglove_bridge", node_env,
                             params={"port": port}, log_dir=str(tmp_path)):
        missing = status(node_env, cfg)
        bridge_only = {"name": "foxglove_bridge", "package": "gamgin_inspect",
                       "executable": "bridge_node"}
        (cfg / "graph.yaml").write_text(
            yaml.safe_dump({"namespace": "/gamgin", "nodes": [bridge_only]}))
        healthy = status(node_env, cfg)
    assert missing.returncode == 3, missing.stdout
    assert "/gamgin/not_started" in missing.stdout and "MISSING" in missing.stdout
    assert healthy.returncode == 0, healthy.stdout
    assert "OK" in healthy.stdout and "serving ws://" in healthy.stdout


def test_a_node_with_a_missing_model_is_an_error_with_its_reason(node_env, tmp_path):
    cfg = tmp_path / "config"
    cfg.mkdir()
    (cfg / "graph.yaml").write_text(yaml.safe_dump({"namespace": "/gamgin", "nodes": [
        {"name": "stt", "package": "gamgin_stt", "executable": "stt_node"}]}))
    missing = tmp_path / "no-such-whisper"
    with testing.NodeProcess("gamgin_stt", "stt_node", "stt", node_env,
                             params={"model": str(missing), "warmup": False},
                             log_dir=str(tmp_path)) as node:
        result = status(node_env, cfg)
        assert node.alive(), "a node with a missing model keeps serving"
    assert result.returncode == 1, result.stdout + result.stderr
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("/gamgin/stt"))
    assert "ERROR" in line and str(missing) in line and "scripts/setup" in line, line
