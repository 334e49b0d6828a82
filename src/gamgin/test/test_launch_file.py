"""launch/bringup.launch.py against the graph description.

`launch` and `launch_ros` have no PyPI wheels, so they cannot run here (ROS machines run
the file for real with `ros2 launch`). This test executes the real launch file with
minimal stand-ins for those two modules that record what it declares, and checks it
declares exactly the graph that `gamgin up` runs -- the two must never drift.
"""

import importlib.util
import sys
import types
from pathlib import Path

import pytest

from gamgin.graph import load_graph

ROOT = Path(__file__).resolve().parents[3]


class Recorded:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


def _stand_ins() -> dict[str, types.ModuleType]:
    mods = {name: types.ModuleType(name) for name in (
        "launch", "launch.actions", "launch.conditions", "launch.substitutions",
        "launch_ros", "launch_ros.actions")}
    mods["launch"].LaunchDescription = lambda actions: list(actions)
    for cls in ("DeclareLaunchArgument", "SetEnvironmentVariable", "OpaqueFunction"):
        setattr(mods["launch.actions"], cls, type(cls, (Recorded,), {}))
    mods["launch.conditions"].UnlessCondition = type("UnlessCondition", (Recorded,), {})

    class LaunchConfiguration(Recorded):
        def perform(self, context: dict) -> str:  # what launch does with the CLI arguments
            return context.get(self.args[0], "")

    mods["launch.substitutions"].LaunchConfiguration = LaunchConfiguration
    mods["launch_ros.actions"].Node = type("Node", (Recorded,), {})
    return mods


def launch(monkeypatch, **arguments) -> tuple[list, list]:
    """Run the launch file; return (top-level actions, nodes) for these launch arguments."""
    for name, mod in _stand_ins().items():
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setenv("GAMGIN_CONFIG", str(ROOT / "config"))
    monkeypatch.delenv("ROS_AUTOMATIC_DISCOVERY_RANGE", raising=False)
    spec = importlib.util.spec_from_file_location("bringup", ROOT / "launch" / "bringup.launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    actions = module.generate_launch_description()
    nodes = []
    for a in actions:
        if type(a).__name__ == "OpaqueFunction":
            nodes += a.kwargs["function"](dict(arguments))
    return actions, nodes


def _launched_nodes(nodes: list) -> list[tuple[str, list[str]]]:
    """(node name, its params files) for every node the launch file starts, alone or in a
    stage container (whose arguments carry each node's own --ros-args)."""
    out = []
    for launched in nodes:
        kw = launched.kwargs
        if kw["executable"] != "stage_container":
            out.append((kw["name"], kw["parameters"]))
            continue
        args = kw["arguments"]
        for i, a in enumerate(args):
            if a.startswith("__node:="):
                j = i + 1
                files = []
                while j < len(args) and args[j] != "--stage":
                    if args[j] == "--params-file":
                        files.append(args[j + 1])
                    j += 1
                out.append((a.split(":=", 1)[1], files))
    return out


def test_launch_file_declares_the_same_graph_as_gamgin_up(monkeypatch):
    actions, nodes = launch(monkeypatch)
    graph = load_graph(ROOT / "config" / "graph.yaml")
    units = graph.units(graph.select())  # role all: the robot's fallback stages stay out
    assert len(nodes) == len(units)  # one launched process per graph.yaml process
    assert [n for n, _ in _launched_nodes(nodes)] == [n.name for u in units for n in u.nodes]
    for launched, unit in zip(nodes, units, strict=True):
        kw, node = launched.kwargs, unit.node
        if unit.composed:
            assert (kw["package"], kw["executable"]) == ("gamgin_common", "stage_container")
            assert kw["arguments"][:2] == ["--process", unit.process]
        else:
            assert (kw["package"], kw["executable"], kw["namespace"]) == (
                node.package, node.executable, graph.namespace)
            assert kw["parameters"] == [str(p) for p in node.param_files(ROOT / "config")]
        assert kw["respawn"] is node.respawn
        assert kw.get("prefix") == (f"nice -n {node.nice}" if node.nice else None)

    env = {a.args[0]: a.args[1] for a in actions if type(a).__name__ == "SetEnvironmentVariable"}
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"  # closed by default


def test_no_audio_drops_the_audio_nodes_also_from_a_composed_process(monkeypatch):
    _, nodes = launch(monkeypatch, no_audio="true")
    graph = load_graph(ROOT / "config" / "graph.yaml")
    assert sorted(n for n, _ in _launched_nodes(nodes)) == sorted(
        n.name for n in graph.select(no_audio=True))


@pytest.mark.parametrize("role", ["robot", "brain"])
def test_a_role_launches_its_hosts_share_as_gamgin_up_does(monkeypatch, role):
    _, nodes = launch(monkeypatch, role=role)
    graph = load_graph(ROOT / "config" / "graph.yaml")
    assert [n for n, _ in _launched_nodes(nodes)] == [n.name for n in graph.select(role=role)]


def test_a_profile_adds_its_params_file_after_each_nodes_own(monkeypatch):
    _, nodes = launch(monkeypatch, profile="gpu")
    graph = load_graph(ROOT / "config" / "graph.yaml").with_profile(ROOT / "config", "gpu")
    by_name = dict(_launched_nodes(nodes))
    assert [by_name[g.name] for g in graph.select()] == [
        [str(p) for p in g.param_files(ROOT / "config")] for g in graph.select()]
    assert all(files[-1].endswith("profiles/gpu.yaml") for files in by_name.values())


def test_without_a_speaker_the_turn_node_is_told_not_to_wait_for_playback(monkeypatch):
    """As `gamgin up --no-audio`: no speaker reports playback, so headless turns must end
    with their reply, not by the think timeout."""
    def turn_args(nodes: list) -> list[str]:
        for launched in nodes:
            args = launched.kwargs.get("arguments", [])
            if "__node:=turn" in args:
                start = args.index("__node:=turn")
                end = args.index("--stage", start) if "--stage" in args[start:] else len(args)
                return args[start:end]
        raise AssertionError("no turn node launched")

    _, headless = launch(monkeypatch, no_audio="true")
    _, with_audio = launch(monkeypatch)
    assert "await_playback:=false" in turn_args(headless)
    assert "await_playback:=false" not in turn_args(with_audio)
