"""The one description of the gamgin node graph (config/graph.yaml). Pure Python.

Both ways of starting the graph read it: `gamgin up` (any machine, no ROS launch
needed) and launch/bringup.launch.py (`ros2 launch gamgin bringup.launch.py` on a ROS
machine). So the two cannot drift: add a node here and both start it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml


class GraphError(ValueError):
    """graph.yaml is malformed; the message names the entry and the problem."""


# `gamgin up --role`: one robot, two hosts -- the pet keeps its ears, a bigger box thinks
ROLES = ("all", "robot", "brain")


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
    process: str = ""  # nodes naming the same process run in one (composition); "" = alone
    role: str = ""  # "robot" (ears, voice, fast path) or "brain" (the heavy stages): split hosts
    # started only with --role robot: the robot's own stand-in for a brain stage while the
    # brain's host is away (kept unconfigured, no model loaded, until then)
    fallback: bool = False
    remap: tuple[tuple[str, str], ...] = ()  # topic remappings (from, to), e.g. its own output

    def prefix(self) -> list[str]:
        """Command prefix that applies `nice` (the same for gamgin up and ros2 launch)."""
        return ["nice", "-n", str(self.nice)] if self.nice else []

    def param_files(self, config_dir: Path) -> list[Path]:
        return [config_dir / p.partition("@")[0] for p in self.params]

    def ros_args(self, namespace: str, config_dir: Path) -> list[str]:
        """Arguments after the executable, exactly as ros2 launch passes them. A params entry
        ``file.yaml@other`` gives this node the parameters of node ``other`` in that file (a
        second instance of a stage, e.g. the robot's fallback STT, reads the stage's own
        section instead of a copy that would drift): rcl params files match whole node names
        only and refuse YAML aliases, so that section is passed as ``-p`` arguments, which
        rank above params files (later ones win among them)."""
        args = ["--ros-args", "-r", f"__node:={self.name}", "-r", f"__ns:={namespace}"]
        for src, dst in self.remap:
            args += ["-r", f"{src}:={dst}"]
        for entry in self.params:
            file, _, other = entry.partition("@")
            if not other:
                args += ["--params-file", str(config_dir / file)]
                continue
            for key, value in _section(config_dir / file, f"{namespace}/{other}").items():
                args += ["-p", f"{key}:={_literal(value)}"]
        return args


def _section(path: Path, node_fqn: str) -> dict:
    """The ros__parameters of one node in a ROS params file ({} if it has none)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise GraphError(f"{path}: cannot read the parameters of {node_fqn}: {exc}") from exc
    return dict((data.get(node_fqn) or {}).get("ros__parameters") or {})


def _literal(value: object) -> str:
    """A parameter value as `-p name:=value` reads it (YAML, one line)."""
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=1 << 20)
    return text.strip().removesuffix("...").strip()


@dataclass(frozen=True)
class Graph:
    namespace: str
    nodes: tuple[GraphNode, ...] = field(default_factory=tuple)

    def with_profile(self, config_dir: Path, profile: str | None) -> Graph:
        """Every node also reads config/profiles/<profile>.yaml, after its own params file
        (ROS applies params files in order: the profile wins). Several, comma-separated
        ("thin-link,qwen1.5b"), apply in the order given."""
        rels: list[str] = []
        for name in (profile or "").split(","):
            if not name.strip():
                continue
            rel = f"profiles/{name.strip()}.yaml"
            if not (config_dir / rel).is_file():
                known = sorted(p.stem for p in (config_dir / "profiles").glob("*.yaml"))
                raise GraphError(f"no profile {name.strip()!r} in {config_dir / 'profiles'}; "
                                 f"known: {known}")
            rels.append(rel)
        if not rels:
            return self
        return Graph(self.namespace, tuple(
            replace(n, params=(*n.params, *rels)) for n in self.nodes))

    def select(self, no_audio: bool = False, only: set[str] | None = None,
               exclude: set[str] | None = None, role: str = "all") -> list[GraphNode]:
        names = {n.name for n in self.nodes}
        for wanted in (only or set()) | (exclude or set()):
            if wanted not in names:
                raise GraphError(f"unknown node {wanted!r}; the graph has {sorted(names)}")
        if role not in ROLES:
            raise GraphError(f"unknown role {role!r}; choose one of {ROLES}")
        if role != "all":
            unassigned = [n.name for n in self.nodes if not n.role]
            if unassigned:
                raise GraphError(f"nodes {unassigned} have no role: give each 'role: robot' "
                                 "or 'role: brain' in graph.yaml to split the graph")
        return [n for n in self.nodes
                if not (no_audio and n.audio)
                and (role == "all" or n.role == role)
                and (not n.fallback or role == "robot")  # one host has its brain at hand
                and (not only or n.name in only)
                and n.name not in (exclude or set())]

    def selection_params(self, nodes: list[GraphNode]) -> dict[str, dict[str, str]]:
        """Parameters that follow from which nodes run: with no speaker (`--no-audio`)
        nobody reports playback, so the turn node must not wait for it; with fallback stages
        (`--role robot`) it watches for the brain's host going away."""
        names = {n.name for n in nodes}
        params: dict[str, dict[str, str]] = {}
        if "turn" in names and "speaker" not in names:
            params.setdefault("turn", {})["await_playback"] = "false"
        # the robot's share of a split graph: its brain is on another host, which can go
        # away; the turn node watches for that and wakes the fallback stages named here
        local = [n.name for n in nodes if n.fallback]
        if "turn" in names and local:
            params.setdefault("turn", {}).update(
                brain_watch="true", local_stages="[" + ", ".join(local) + "]")
        return params

    def units(self, nodes: list[GraphNode] | None = None) -> list[Unit]:
        """The OS processes that run ``nodes`` (default: all): nodes sharing a ``process``
        name in one, in the order the first of each appears; every other node alone."""
        units: dict[str, list[GraphNode]] = {}
        for n in self.nodes if nodes is None else nodes:
            units.setdefault(n.process or f"node:{n.name}", []).append(n)
        return [Unit(n[0].process, tuple(n)) for n in units.values()]


@dataclass(frozen=True)
class Unit:
    """One process of the graph: a node alone, or several composed in a container.

    Composition is what ROS 2 component containers do for C++ nodes: light nodes share one
    Python interpreter, rclpy and DDS participant instead of ~45 MB each (measured:
    `gamgin bench memory`). The price is shared fate: a crash restarts the whole process."""

    process: str  # "" for a node alone
    nodes: tuple[GraphNode, ...]

    @property
    def name(self) -> str:
        return self.process or self.nodes[0].name

    @property
    def composed(self) -> bool:
        return bool(self.process)

    @property
    def node(self) -> GraphNode:
        """The first node: the process's nice/respawn (load_graph checks the rest agree)."""
        return self.nodes[0]

    def command(self, namespace: str, config_dir: Path, exe: str, container: str = "",
                extra: dict[str, list[str]] | None = None) -> list[str]:
        """The process's argv: ``exe`` with the node's ROS arguments, or for a composed unit
        ``container --process <name>`` and one ``--stage <package>/<executable> <ROS args>``
        per node. ``extra``: more ROS arguments per node name (e.g. ``-p k:=v``)."""
        def args(n: GraphNode) -> list[str]:
            return [*n.ros_args(namespace, config_dir), *(extra or {}).get(n.name, [])]

        if not self.composed:
            return [*self.node.prefix(), exe, *args(self.node)]
        cmd = [*self.node.prefix(), container, "--process", self.process]
        for n in self.nodes:
            cmd += ["--stage", f"{n.package}/{n.executable}", *args(n)]
        return cmd


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
                                "description", "nice", "standby", "process", "role",
                                "fallback", "remap"}
        if unknown:
            raise GraphError(
                f"{path}: nodes[{i}] ({entry['name']}) has unknown keys {sorted(unknown)}")
        if entry["name"] in seen:
            raise GraphError(f"{path}: node name {entry['name']!r} appears twice")
        seen.add(entry["name"])
        params = entry.get("params") or []
        nice = entry.get("nice", 0)
        role = str(entry.get("role") or "")
        if role not in ("", "robot", "brain"):
            raise GraphError(f"{path}: nodes[{i}] ({entry['name']}): role must be robot or "
                             f"brain, got {role!r}")
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
            process=str(entry.get("process") or ""), role=role,
            fallback=bool(entry.get("fallback", False)),
            remap=tuple((str(k), str(v)) for k, v in (entry.get("remap") or {}).items()),
        ))
    graph = Graph(namespace=ns, nodes=tuple(nodes))
    for unit in graph.units():
        _check_unit(path, unit, {n.name for n in graph.nodes} - {n.name for n in unit.nodes})
    return graph


def _check_unit(path: Path, unit: Unit, others: set[str]) -> None:
    """Nodes in one process must agree on what is a process's, not a node's, setting."""
    if not unit.composed:
        return
    if unit.process in others:  # logs and `gamgin up` output are labelled by process
        raise GraphError(f"{path}: process name {unit.process!r} is also a node outside it")
    for n in unit.nodes:
        if n.standby:
            raise GraphError(f"{path}: {n.name}: a standby node runs alone (it is taken over "
                             f"by the spare process); remove 'process: {unit.process}'")
        for key in ("nice", "respawn", "role"):
            if getattr(n, key) != getattr(unit.node, key):
                raise GraphError(
                    f"{path}: process {unit.process!r}: {n.name} has {key} "
                    f"{getattr(n, key)!r} but {unit.node.name} has {getattr(unit.node, key)!r}; "
                    f"a process has one {key}")


# The brain's host has the memory the robot lacks: with no --profile it runs the bigger
# Qwen when setup installed it (`scripts/setup --with-qwen1.5b`).
BRAIN_PROFILE, BRAIN_MODEL = "qwen1.5b", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"


def role_profile(role: str, profile: str | None, config_dir: Path) -> str | None:
    """The profile a host runs: as given (an empty one too: none), else for `--role brain`
    the bigger brain when its model is installed, else none."""
    if profile is not None or role != "brain":
        return profile
    from gamgin_common.paths import models_dir

    if ((models_dir() / BRAIN_MODEL).is_file()
            and (config_dir / "profiles" / f"{BRAIN_PROFILE}.yaml").is_file()):
        return BRAIN_PROFILE
    return None


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
