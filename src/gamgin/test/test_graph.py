from pathlib import Path

import pytest

from gamgin.graph import GraphError, load_graph

ROOT = Path(__file__).resolve().parents[3]


def test_the_shipped_graph_loads_and_names_existing_params_files():
    graph = load_graph(ROOT / "config" / "graph.yaml")
    assert graph.namespace == "/gamgin"
    names = [n.name for n in graph.nodes]
    assert {"mic", "speaker"} <= set(names)
    for node in graph.nodes:
        for f in node.param_files(ROOT / "config"):
            assert f.is_file(), f"{node.name}: params file {f} missing"


def test_no_audio_leaves_out_exactly_the_audio_nodes():
    graph = load_graph(ROOT / "config" / "graph.yaml")
    kept = graph.select(no_audio=True)
    assert {n.name for n in kept} == {n.name for n in graph.nodes
                                      if not n.audio and not n.fallback}
    assert not {"mic", "speaker"} & {n.name for n in kept}


def test_ros_args_are_what_ros2_launch_would_pass(tmp_path):
    graph = load_graph(ROOT / "config" / "graph.yaml")
    mic = next(n for n in graph.nodes if n.name == "mic")
    assert mic.ros_args("/gamgin", tmp_path) == [
        "--ros-args", "-r", "__node:=mic", "-r", "__ns:=/gamgin",
        "--params-file", str(tmp_path / "audio.yaml")]


def test_helpers_run_niced_and_the_conversation_path_does_not():
    graph = load_graph(ROOT / "config" / "graph.yaml")
    nice = {n.name: n.nice for n in graph.nodes}
    assert all(nice[n] == 0 for n in ("mic", "speaker", "wake", "stt", "llm", "tts", "turn"))
    assert nice["foxglove_bridge"] > 0 and nice["speech_bubble"] > 0
    bridge = next(n for n in graph.nodes if n.name == "foxglove_bridge")
    assert bridge.prefix() == ["nice", "-n", str(bridge.nice)]


@pytest.mark.parametrize(("text", "message"), [
    ("nodes: 3", "'nodes' list"),
    ("nodes: [{name: a, package: p}]", "lacks executable"),
    ("nodes: [{name: a, package: p, executable: e}, {name: a, package: p, executable: e}]",
     "appears twice"),
    ("nodes: [{name: a, package: p, executable: e, colour: red}]", "unknown keys"),
    ("nodes: [", "not valid YAML"),
    ("nodes: [{name: a, package: p, executable: e, nice: -5}]", "nice must be 0..19"),
    ("nodes: [{name: a, package: p, executable: e, nice: true}]", "nice must be 0..19"),
    ("nodes: [{name: a, package: p, executable: e, process: x},"
     " {name: b, package: p, executable: e, process: x, nice: 5}]", "a process has one nice"),
    ("nodes: [{name: a, package: p, executable: e, process: x},"
     " {name: b, package: p, executable: e, process: x, respawn: false}]", "one respawn"),
    ("nodes: [{name: a, package: p, executable: e, process: x, standby: true}]",
     "a standby node runs alone"),
    ("nodes: [{name: a, package: p, executable: e, process: b},"
     " {name: b, package: p, executable: e}]", "also a node outside it"),
    ("nodes: [{name: a, package: p, executable: e, role: cloud}]", "role must be robot or brain"),
    ("nodes: [{name: a, package: p, executable: e, process: x, role: robot},"
     " {name: b, package: p, executable: e, process: x, role: brain}]", "a process has one role"),
])
def test_malformed_graphs_are_refused_with_the_reason(tmp_path, text, message):
    (tmp_path / "graph.yaml").write_text(text)
    with pytest.raises(GraphError, match=message):
        load_graph(tmp_path / "graph.yaml")


def test_selecting_an_unknown_node_is_an_error():
    graph = load_graph(ROOT / "config" / "graph.yaml")
    with pytest.raises(GraphError, match="unknown node 'nope'"):
        graph.select(only={"nope"})


@pytest.mark.parametrize("profile", ["small-robot", "gpu", "qwen1.5b", "thin-link"])
def test_profiles_only_set_parameters_the_nodes_declare(profile):
    """A typo in a profile would be silently ignored by ROS: check every key exists in the
    node's own params file."""
    import yaml

    graph = load_graph(ROOT / "config" / "graph.yaml")
    overlay = yaml.safe_load((ROOT / "config" / "profiles" / f"{profile}.yaml").read_text())
    for fqn, body in overlay.items():
        name = fqn.rsplit("/", 1)[-1]
        node = next(n for n in graph.nodes if n.name == name)
        own = {}
        for f in node.param_files(ROOT / "config"):
            own.update(yaml.safe_load(f.read_text()).get(fqn, {}).get("ros__parameters", {}))
        unknown = set(body["ros__parameters"]) - set(own)
        assert not unknown, f"{profile}: {fqn} has no parameters {sorted(unknown)}"


def test_unknown_profile_is_refused_with_the_known_ones():
    graph = load_graph(ROOT / "config" / "graph.yaml")
    with pytest.raises(GraphError, match=r"no profile 'tiny'.*small-robot"):
        graph.with_profile(ROOT / "config", "tiny")
    with pytest.raises(GraphError, match=r"no profile 'tiny'"):
        graph.with_profile(ROOT / "config", "thin-link,tiny")


def test_profiles_given_together_apply_in_their_order():
    graph = load_graph(ROOT / "config" / "graph.yaml")
    both = graph.with_profile(ROOT / "config", "thin-link, qwen1.5b")
    llm = next(n for n in both.nodes if n.name == "llm")
    plain = next(n for n in graph.nodes if n.name == "llm")
    assert llm.params == (*plain.params, "profiles/thin-link.yaml", "profiles/qwen1.5b.yaml")
    assert graph.with_profile(ROOT / "config", " , ") is graph


def test_composed_nodes_share_a_process_and_the_rest_run_alone(tmp_path):
    graph = load_graph(ROOT / "config" / "graph.yaml")
    units = graph.units()
    assert sorted(n.name for u in units for n in u.nodes) == sorted(n.name for n in graph.nodes)
    by = {u.name: [n.name for n in u.nodes] for u in units}
    # the conversation's heavy stages each keep a process (and the standby can replace them)
    for heavy in ("stt", "llm", "tts"):
        assert by[heavy] == [heavy]
    base = next(u for u in units if "mic" in [n.name for n in u.nodes])
    assert base.composed and len(base.nodes) > 1
    # --no-audio takes the audio nodes out of their process, not the process away
    kept = graph.units(graph.select(no_audio=True))
    assert not {"mic", "speaker", "music"} & {n.name for u in kept for n in u.nodes}
    assert base.name in {u.name for u in kept}


def test_a_composed_process_passes_each_node_its_own_ros_arguments(tmp_path):
    (tmp_path / "graph.yaml").write_text(
        "nodes: [{name: a, package: pa, executable: ea, process: both, params: [a.yaml]},"
        " {name: solo, package: ps, executable: es},"
        " {name: b, package: pb, executable: eb, process: both, params: [b.yaml]}]")
    graph = load_graph(tmp_path / "graph.yaml")
    both, solo = graph.units()
    assert [n.name for n in both.nodes] == ["a", "b"] and both.name == "both"
    cmd = both.command("/ns", tmp_path, "/x/ea", "/x/stage_container", {"b": ["-p", "k:=1"]})
    assert cmd == ["/x/stage_container", "--process", "both",
                   "--stage", "pa/ea", "--ros-args", "-r", "__node:=a", "-r", "__ns:=/ns",
                   "--params-file", str(tmp_path / "a.yaml"),
                   "--stage", "pb/eb", "--ros-args", "-r", "__node:=b", "-r", "__ns:=/ns",
                   "--params-file", str(tmp_path / "b.yaml"), "-p", "k:=1"]
    assert solo.command("/ns", tmp_path, "/x/es") == [
        "/x/es", "--ros-args", "-r", "__node:=solo", "-r", "__ns:=/ns"]


def test_the_turn_node_waits_for_playback_only_when_a_speaker_runs():
    graph = load_graph(ROOT / "config" / "graph.yaml")
    assert graph.selection_params(graph.select()) == {}
    assert graph.selection_params(graph.select(no_audio=True)) == {
        "turn": {"await_playback": "false"}}
    assert graph.selection_params(graph.select(only={"llm", "tts"})) == {}  # no turn node


def test_the_roles_split_the_graph_between_the_pet_and_its_brain():
    """`gamgin up --role robot|brain`: the pet keeps its ears, voice, turns and devices;
    the box runs the heavy stages. Each node on exactly one host, no process split."""
    graph = load_graph(ROOT / "config" / "graph.yaml")
    robot = {n.name for n in graph.select(role="robot")}
    brain = {n.name for n in graph.select(role="brain")}
    assert {"mic", "speaker", "wake", "turn", "devices"} <= robot
    assert {"stt", "llm", "tts", "knowledge"} <= brain
    assert not robot & brain and robot | brain == {n.name for n in graph.nodes}
    # the robot's fallback stages stand in for the brain's: one host has its brain at hand
    local = {n.name for n in graph.nodes if n.fallback}
    assert local == {"stt_local", "tts_local"} and local <= robot
    assert {n.name for n in graph.select(role="all")} == (robot | brain) - local
    # --no-audio still applies within a role
    assert not {"mic", "speaker"} & {n.name for n in graph.select(role="robot", no_audio=True)}
    with pytest.raises(GraphError, match="unknown role"):
        graph.select(role="cloud")


def test_a_graph_without_roles_runs_whole_but_cannot_be_split(tmp_path):
    (tmp_path / "graph.yaml").write_text("nodes: [{name: a, package: p, executable: e}]")
    graph = load_graph(tmp_path / "graph.yaml")
    assert [n.name for n in graph.select()] == ["a"]
    with pytest.raises(GraphError, match="have no role"):
        graph.select(role="robot")


def test_the_robot_watches_its_brain_and_its_fallback_stages_share_the_stages_settings(
        tmp_path):
    """--role robot: the turn node watches the brain and wakes the fallback stages, which
    read their stage's own section (file@node), then their own (later wins), and send their
    output to the turn node (remap), never to a brain that comes back."""
    graph = load_graph(ROOT / "config" / "graph.yaml")
    robot = graph.select(role="robot")
    assert graph.selection_params(robot)["turn"] == {
        "brain_watch": "true", "local_stages": "[stt_local, tts_local]"}
    assert "brain_watch" not in graph.selection_params(graph.select()).get("turn", {})
    (tmp_path / "stt.yaml").write_text(
        "/gamgin/stt:\n  ros__parameters:\n    model: whisper-base\n    languages: [zh, en]\n"
        "    initial_prompt: ''\n    hotwords: 金坚\n")
    (tmp_path / "local.yaml").write_text(
        "/gamgin/stt_local:\n  ros__parameters:\n    autostart: false\n    model: tiny\n")
    stt_local = next(n for n in graph.nodes if n.name == "stt_local")
    args = stt_local.ros_args("/gamgin", tmp_path)
    assert args[:8] == ["--ros-args", "-r", "__node:=stt_local", "-r", "__ns:=/gamgin",
                        "-r", "transcript:=local/transcript", "-p"]
    ps = [args[i + 1] for i, a in enumerate(args) if a == "-p"]
    assert ps == ["model:=whisper-base", "languages:=[zh, en]", "initial_prompt:=''",
                  "hotwords:=金坚", "autostart:=false", "model:=tiny"]
    assert [f.name for f in stt_local.param_files(tmp_path)] == ["stt.yaml", "local.yaml"]


def test_the_brain_runs_the_bigger_qwen_when_it_is_installed(tmp_path, monkeypatch):
    from gamgin.graph import BRAIN_MODEL, role_profile

    config = ROOT / "config"
    monkeypatch.setenv("GAMGIN_MODELS", str(tmp_path))
    assert role_profile("brain", None, config) is None  # not installed: the default model
    (tmp_path / BRAIN_MODEL).write_bytes(b"GGUF")
    assert role_profile("brain", None, config) == "qwen1.5b"
    assert role_profile("brain", "", config) == ""  # asked for none: none
    assert role_profile("brain", "thin-link", config) == "thin-link"  # as given
    assert role_profile("robot", None, config) is None and role_profile("all", None, config) is None
