"""ros2 launch gamgin bringup.launch.py [no_audio:=true] [profile:=small-robot|gpu]
                                       [role:=robot|brain peer:=ADDR [secure:=true|false]]

Starts the gamgin graph on a machine with ROS 2 installed. The node list comes from
config/graph.yaml through gamgin.graph -- the same description `gamgin up` runs -- so
this file holds no node of its own.
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from gamgin.graph import default_config_dir, load_graph, role_profile
from gamgin.pair import host_cert, write_link


def link_envs(role: str, peer: str, secure: str, count: int) -> list[dict[str, str]]:
    """Per process: the environment of the link to the other host (as `gamgin up --peer`):
    TLS once this host is paired (`gamgin pair`) unless secure:=false, else unicast UDP."""
    if not peer:
        return [{} for _ in range(count)]
    peers = [p.strip() for p in peer.split(",") if p.strip()]
    data = os.environ.get("GAMGIN_DATA") or str(default_config_dir().resolve().parent / "data")
    hc = host_cert(Path(data) / "pair")
    if secure == "false" or (hc is None and secure != "true") or role not in ("robot", "brain"):
        return [{"ROS_STATIC_PEERS": ";".join(peers)} for _ in range(count)]
    if hc is None:
        raise RuntimeError(f"secure:=true but this host is not paired ({data}/pair/host)")
    link = write_link(role, peers, hc, Path(tempfile.mkdtemp(prefix="gamgin-link-")))
    atexit.register(shutil.rmtree, link.folder, ignore_errors=True)  # nodes read it at start
    if link.listens and count > len(link.profiles):
        raise RuntimeError(f"{count} processes, {len(link.profiles)} link ports")
    # respawn keeps a process's slot: the robot's n-th process listens on LINK_PORT + n
    return [link.env({}, link.profiles[i] if link.listens else None) for i in range(count)]


def graph_nodes(context, *args, **kwargs) -> list:
    """The processes, built once the launch arguments are known (profile picks a params
    file, no_audio drops the audio nodes, also from a composed process)."""
    config_dir = default_config_dir()
    profile = LaunchConfiguration("profile").perform(context)
    no_audio = LaunchConfiguration("no_audio").perform(context).lower() in ("true", "1")
    role = LaunchConfiguration("role").perform(context) or "all"
    # role:=brain with no profile: the bigger Qwen when installed (as `gamgin up`)
    profile = role_profile(role, profile or None, config_dir)
    graph = load_graph(config_dir / "graph.yaml").with_profile(config_dir, profile)
    nodes = graph.select(no_audio=no_audio, role=role)
    # e.g. no speaker: the turn node does not wait for playback (as with gamgin up)
    derived = graph.selection_params(nodes)
    extra = {name: [a for k, v in kv.items() for a in ("-p", f"{k}:={v}")]
             for name, kv in derived.items()}
    actions = []
    units = graph.units(nodes)
    envs = link_envs(role, LaunchConfiguration("peer").perform(context),
                     LaunchConfiguration("secure").perform(context).lower(), len(units))
    for unit, env in zip(units, envs, strict=True):
        node = unit.node
        common = dict(
            respawn=node.respawn,
            respawn_delay=0.0,  # as gamgin up: a turn may be waiting on the node
            prefix=" ".join(node.prefix()) or None,
            output="screen",
        )
        if env:
            common["additional_env"] = env
        if unit.composed:
            # several light nodes in one Python process (gamgin_common.container), as a
            # component container would hold them; each keeps its own name and params
            cmd = unit.command(graph.namespace, config_dir, node.executable, "stage_container",
                               extra)
            actions.append(Node(package="gamgin_common", executable="stage_container",
                                arguments=cmd[cmd.index("stage_container") + 1:], **common))
            continue
        actions.append(Node(
            package=node.package,
            executable=node.executable,
            name=node.name,
            namespace=graph.namespace,
            parameters=[str(p) for p in node.param_files(config_dir)]
            + ([{k: v == "true" if v in ("true", "false") else v
                 for k, v in derived[node.name].items()}] if node.name in derived else []),
            **common,
        ))
    return actions


def generate_launch_description() -> LaunchDescription:
    config_dir = default_config_dir()
    home = os.environ.get("GAMGIN_HOME", str(config_dir.resolve().parent))
    actions = [
        DeclareLaunchArgument("no_audio", default_value="false",
                              description="start all but the microphone and speaker nodes"),
        DeclareLaunchArgument("profile", default_value="",
                              description="config/profiles/<profile>.yaml: small-robot, gpu"),
        DeclareLaunchArgument("role", default_value="all",
                              description="one host's share of a split graph: robot | brain"),
        DeclareLaunchArgument("peer", default_value="",
                              description="the other host(s) of a split graph (addresses)"),
        DeclareLaunchArgument("secure", default_value="",
                              description="link to peer over TLS: true | false (default: "
                              "true once this host is paired with `gamgin pair`)"),
        # Closed by default (same rule as `gamgin up`): only this host sees the graph,
        # unless the user already chose a discovery range.
        SetEnvironmentVariable("ROS_AUTOMATIC_DISCOVERY_RANGE",
                               os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")),
        SetEnvironmentVariable("GAMGIN_HOME", home),
        # Nodes die with this launch process even when it is killed with SIGKILL (launch
        # itself only stops them on SIGINT/SIGTERM): gamgin_common.shutdown.die_with_parent
        SetEnvironmentVariable("GAMGIN_DIE_WITH_PARENT", "1"),
        SetEnvironmentVariable("GAMGIN_PARENT_PID", str(os.getpid())),
        SetEnvironmentVariable("GAMGIN_MODELS", os.environ.get("GAMGIN_MODELS", f"{home}/models")),
        SetEnvironmentVariable("GAMGIN_DATA", os.environ.get("GAMGIN_DATA", f"{home}/data")),
    ]
    actions.append(OpaqueFunction(function=graph_nodes))
    return LaunchDescription(actions)
