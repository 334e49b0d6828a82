"""The one description of the gamgin node graph (config/graph.yaml). Pure Python.

Both ways of starting the graph read it: `gamgin up` (any machine, no ROS launch
needed) and launch/bringup.launch.py (`ros2 launch gamgin bringup.launch.py` on a ROS
machine). So the two cannot drift: add a node here and both start it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml


class GraphError(ValueError):
    """graph.yaml is malformed; the message names the entry and the problem."""


@dataclass(frozen=True)
class GraphNode:
    name: str  # ROS node name, e.g. "stt" -> /gamgin/stt
    package: str  # ROS package that installs the executable in lib/<package>/
    executable: str
    params: tuple[str, ...] = ()  # ROS params files, relative to the config dir
    audio: bool = False  # needs a sound device: skipped by `gamgin up --no-audio`
    respawn: bool = True
    description: str = ""
    nice: int = 0  # > 0: yields the CPU to the conversation path (helpers, viewers)
    standby: bool = False  # gamgin up: a crash is taken over by the pre-started spare process

    def prefix(self) -> list[str]:
        """Command prefix that applies `nice` (the same for gamgin up and ros2 launch)."""
        return ["nice", "-n", str(self.nice)] if self.nice else []

    def param_files(self, config_dir: Path) -> list[Path]:
        return [config_dir / p for p in self.params]

    def ros_args(self, namespace: str, config_dir: Path) -> list[str]:
        """Arguments after the executable, exactly as ros2 launch passes them."""
        args = ["--ros-args", "-r", f"__node:={self.name}", "-r", f"__ns:={namespace}"]
        for f in self.param_files(config_dir):
            args += ["--params-file", str(f)]
        return args


@dataclass(frozen=True)
class Graph:
    namespace: str
    nodes: tuple[GraphNode, ...] = field(default_factory=tuple)

    def with_profile(self, config_dir: Path, profile: str | None) -> Graph:
        """Every node also reads config/profiles/<profile>.yaml, after its own params file
        (ROS applies params files in order: the profile wins)."""
        if not profile:
            return self
        rel = f"profiles/{profile}.yaml"
        if not (config_dir / rel).is_file():
            known = sorted(p.stem for p in (config_dir / "profiles").glob("*.yaml"))
            raise GraphError(f"no profile {profile!r} in {config_dir / 'profiles'}; known: {known}")
        return Graph(self.namespace, tuple(
            GraphNode(n.name, n.package, n.executable, (*n.params, rel), n.audio, n.respawn,
                      n.description, n.nice, n.standby) for n in self.nodes))

    def select(self, no_audio: bool = False, only: set[str] | None = None,
               exclude: set[str] | None = None) -> list[GraphNode]:
        names = {n.name for n in self.nodes}
        for wanted in (only or set()) | (exclude or set()):
            if wanted not in names:
                raise GraphError(f"unknown node {wanted!r}; the graph has {sorted(names)}")
        return [n for n in self.nodes
                if not (no_audio and n.audio)
                and (not only or n.name in only)
                and n.name not in (exclude or set())]


def load_graph(path: str | Path) -> Graph:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise GraphError(f"graph description not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise GraphError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
        raise GraphError(f"{path}: expected a mapping with a 'nodes' list")
    ns = str(data.get("namespace", "/gamgin"))
    ns = ns if ns.startswith("/") else "/" + ns
    nodes, seen = [], set()
    for i, entry in enumerate(data["nodes"]):
        if not isinstance(entry, dict):
            raise GraphError(f"{path}: nodes[{i}] is not a mapping")
        missing = [k for k in ("name", "package", "executable") if not entry.get(k)]
        if missing:
            raise GraphError(f"{path}: nodes[{i}] lacks {', '.join(missing)}")
        unknown = set(entry) - {"name", "package", "executable", "params", "audio", "respawn",
                                "description", "nice", "standby"}
        if unknown:
            raise GraphError(
                f"{path}: nodes[{i}] ({entry['name']}) has unknown keys {sorted(unknown)}")
        if entry["name"] in seen:
            raise GraphError(f"{path}: node name {entry['name']!r} appears twice")
        seen.add(entry["name"])
        params = entry.get("params") or []
        nice = entry.get("nice", 0)
        if isinstance(nice, bool) or not isinstance(nice, int) or not 0 <= nice <= 19:
            raise GraphError(f"{path}: nodes[{i}] ({entry['name']}): nice must be 0..19, "
                             f"got {nice!r}")
        nodes.append(GraphNode(
            name=str(entry["name"]), package=str(entry["package"]),
            executable=str(entry["executable"]),
            params=tuple(str(p) for p in (params if isinstance(params, list) else [params])),
            audio=bool(entry.get("audio", False)), respawn=bool(entry.get("respawn", True)),
            description=str(entry.get("description", "")), nice=nice,
            standby=bool(entry.get("standby", False)),
        ))
    return Graph(namespace=ns, nodes=tuple(nodes))


def default_config_dir() -> Path:
    """$GAMGIN_CONFIG, else the workspace's config/ (editable), else share/gamgin/config."""
    if os.environ.get("GAMGIN_CONFIG"):
        return Path(os.environ["GAMGIN_CONFIG"])
    if os.environ.get("GAMGIN_HOME") and (Path(os.environ["GAMGIN_HOME"]) / "config").is_dir():
        return Path(os.environ["GAMGIN_HOME"]) / "config"
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("gamgin")) / "config"
    except Exception as exc:
        raise GraphError(
            "cannot find gamgin's config directory: source scripts/activate (or the colcon "
            f"install/setup.bash), or set GAMGIN_CONFIG ({exc})"
        ) from exc
