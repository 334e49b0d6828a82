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


def test_launch_file_declares_the_same_graph_as_gamgin_up(monkeypatch):
    actions, nodes = launch(monkeypatch)
    graph = load_graph(ROOT / "config" / "graph.yaml")
    assert [n.kwargs["name"] for n in nodes] == [g.name for g in graph.nodes]
    for launched, node in zip(nodes, graph.nodes, strict=True):
        kw = launched.kwargs
        assert (kw["package"], kw["executable"], kw["namespace"]) == (
            node.package, node.executable, graph.namespace)
        assert kw["parameters"] == [str(p) for p in node.param_files(ROOT / "config")]
        assert kw["respawn"] is node.respawn
        assert kw.get("prefix") == (f"nice -n {node.nice}" if node.nice else None)
        assert (kw["condition"] is not None) == node.audio  # no_audio:=true drops audio nodes

    env = {a.args[0]: a.args[1] for a in actions if type(a).__name__ == "SetEnvironmentVariable"}
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"  # closed by default


def test_a_profile_adds_its_params_file_after_each_nodes_own(monkeypatch):
    _, nodes = launch(monkeypatch, profile="gpu")
    graph = load_graph(ROOT / "config" / "graph.yaml").with_profile(ROOT / "config", "gpu")
    assert [n.kwargs["parameters"] for n in nodes] == [
        [str(p) for p in g.param_files(ROOT / "config")] for g in graph.nodes]
    assert all(n.kwargs["parameters"][-1].endswith("profiles/gpu.yaml") for n in nodes)
