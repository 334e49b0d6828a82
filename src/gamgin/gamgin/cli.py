"""The `gamgin` command: start the graph, inspect it, benchmark it, talk to it.

Subcommands that belong to a stage live in that stage's package and are dispatched by
module name, so this file stays the table of contents and never imports a model.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from gamgin.graph import ROLES, GraphError, default_config_dir, load_graph, role_profile
from gamgin.pair import LINK_PORT, Link, PairError, SlotPicker, host_cert, write_link
from gamgin_common.paths import ResultsPathError

# `gamgin <cmd> ...` -> module whose main(argv) -> int implements it.
DELEGATED = {
    "say": "gamgin_tts.say",
    "status": "gamgin.status",
    "trace": "gamgin.trace",
    "record": "gamgin.record",
    "replay": "gamgin.replay",
    "kb": "gamgin_knowledge.cli",
    "wyoming": "gamgin_wyoming.server",  # serve stages to Home Assistant (Wyoming)
    "pair": "gamgin.pair",  # the pet's certificates: an encrypted robot-brain link
}
WAKE = {"enroll": "gamgin_wake.enroll", "train": "gamgin_wake.train"}
BENCHES = {
    "transport": "gamgin.bench_transport",
    "audio-codec": "gamgin.bench_codec",
    "wake": "gamgin_wake.bench",
    "stt": "gamgin_stt.bench",
    "llm": "gamgin_llm.bench",
    "tts": "gamgin_tts.bench",
    "intents": "gamgin_devices.bench",
    "kb": "gamgin_knowledge.bench",
    "e2e": "gamgin.bench_e2e",
    "bridge": "gamgin_inspect.bench",
    "soak": "gamgin.bench_soak",
    "aec": "gamgin.bench_aec",
    "recovery": "gamgin.bench_recovery",
    "memory": "gamgin.bench_memory",
    "wyoming": "gamgin_wyoming.bench",
    "link": "gamgin.bench_link",
    "split": "gamgin.bench_split",
}


def graph_env(lan: bool = False, peers: str = "") -> dict[str, str]:
    """The environment every node of `gamgin up` gets. ``peers``: the pet's other host(s)
    (comma-separated addresses), reached by unicast while the graph stays closed to
    every other host (ROS_STATIC_PEERS with the LOCALHOST range)."""
    env = dict(os.environ)
    home = env.get("GAMGIN_HOME") or str(Path(default_config_dir()).resolve().parent)
    env.setdefault("GAMGIN_HOME", home)
    env.setdefault("GAMGIN_MODELS", str(Path(home) / "models"))
    env.setdefault("GAMGIN_DATA", str(Path(home) / "data"))
    # Closed by default: nobody else on the home network can publish a Transcript that
    # switches the appliances. --lan (or setting the variable yourself) opens it.
    if lan:
        env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "SUBNET"
    else:
        env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    if peers:
        env["ROS_STATIC_PEERS"] = ";".join(p.strip() for p in peers.split(",") if p.strip())
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.setdefault("RCUTILS_COLORIZED_OUTPUT", "0")
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


def _run_module(module: str, argv: list[str]) -> int:
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        print(f"gamgin: {module} is not installed ({exc}); run scripts/setup", file=sys.stderr)
        return 2
    try:
        return int(mod.main(argv) or 0)
    except ResultsPathError as exc:
        print(f"gamgin: {exc}", file=sys.stderr)
        return 2


def cmd_up(args: argparse.Namespace) -> int:
    from gamgin.supervisor import Supervisor

    config_dir = Path(args.config) if args.config else default_config_dir()
    profile = role_profile(args.role or "all", args.profile, config_dir)
    if profile != args.profile:
        print(f"[gamgin] role brain: --profile {profile} (its model is installed; "
              "--profile '' for the default model)", flush=True)
    graph = load_graph(config_dir / "graph.yaml").with_profile(config_dir, profile)
    split = lambda s: {x.strip() for x in s.split(",") if x.strip()} if s else None  # noqa: E731
    exclude = (split(args.exclude) or set()) | ({"foxglove_bridge"} if args.no_bridge else set())
    exclude &= {n.name for n in graph.nodes}
    try:
        nodes = graph.select(no_audio=args.no_audio, only=split(args.only), exclude=exclude,
                             role=args.role)
    except GraphError as exc:
        print(f"gamgin up: {exc}", file=sys.stderr)
        return 2
    overrides = {"foxglove_bridge": {k: v for k, v in (("host", args.bridge_host),
                                                       ("port", args.bridge_port)) if v},
                 **graph.selection_params(nodes)}
    env = graph_env(lan=args.lan, peers=args.peer or "")
    try:
        link = secure_link(args, env)
    except PairError as exc:
        print(f"gamgin up: {exc}", file=sys.stderr)
        return 2
    log_dir = Path(args.log_dir) if args.log_dir else (
        Path(env["GAMGIN_HOME"]) / "log" / "gamgin-up" / time.strftime("%Y%m%d-%H%M%S"))
    try:
        sup = Supervisor(graph, nodes, config_dir, env=env, log_dir=log_dir, overrides=overrides,
                         standby=not args.no_standby, standby_delay=args.standby_delay,
                         env_for=SlotPicker(link) if link else None)
    except FileNotFoundError as exc:
        print(f"gamgin up: {exc}", file=sys.stderr)
        return 2
    if link:
        reach = (f"listening on TCP {LINK_PORT}..{LINK_PORT + len(link.profiles) - 1}"
                 if link.listens else f"dialing {args.peer}")
        where = f"link TLS ({reach}; pet's certificate required), UDP on loopback only"
    else:
        where = (f"discovery {env['ROS_AUTOMATIC_DISCOVERY_RANGE']}" + (
            f" + peers {env['ROS_STATIC_PEERS']} (not encrypted)"
            if env.get("ROS_STATIC_PEERS") else ""))
    sup.say(f"graph {graph.namespace}: {', '.join(n.name for n in nodes)}"
            f"{' (no audio)' if args.no_audio else ''}"
            f"{f'; role {args.role}' if args.role != 'all' else ''}; {where}"
            f"; domain {env.get('ROS_DOMAIN_ID', '0')}; "
            f"logs in {log_dir}")
    if link and not link.listens:  # the robot's profiles listen: for its nodes only
        sup.say(f"a tool here that must see the robot too: FASTDDS_DEFAULT_PROFILES_FILE="
                f"{link.profiles[0]} OPENSSL_CONF={link.openssl_conf} "
                "ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET")
    # `gamgin status` then expects only the nodes started here
    from gamgin.status import forget_selection, record_selection, selection_file

    started = [n.name for n in nodes]
    sel = selection_file(env.get("ROS_DOMAIN_ID") or "0")
    record_selection(sel, started, [n.name for n in graph.nodes if n.name not in started])
    try:
        return sup.run()
    finally:
        forget_selection(sel)
        if link:
            shutil.rmtree(link.folder, ignore_errors=True)


def secure_link(args: argparse.Namespace, env: dict[str, str]) -> Link | None:
    """The TLS link of a split graph, or None (one host, or --insecure). Secure by default
    once this host is paired: a paired pet never falls back to a link in clear unless
    asked to; an unpaired one keeps the unicast UDP link (ROS_STATIC_PEERS)."""
    if args.insecure and args.secure:
        raise PairError("--secure and --insecure contradict each other")
    if not args.peer:
        if args.secure:
            raise PairError("--secure is for a split graph: give --role and --peer")
        return None
    hc = host_cert(Path(env["GAMGIN_DATA"]) / "pair")
    if args.insecure or (hc is None and not args.secure) or (
            args.role == "all" and not args.secure):
        print("gamgin up: the link to the other host is not encrypted ("
              + ("--insecure" if args.insecure else "--role all" if hc else
                 "this host is not paired: see `gamgin pair --help`") + ")", file=sys.stderr)
        return None
    if args.lan:
        raise PairError("--lan shows the graph to the network in clear: not with the "
                        "encrypted link (use --insecure)")
    if hc is None:
        raise PairError(f"--secure: this host is not paired ({env['GAMGIN_DATA']}/pair/host "
                        "is empty); run `gamgin pair init` on the robot, `gamgin pair issue` "
                        "there and `gamgin pair install` here")
    peers = [p.strip() for p in args.peer.split(",") if p.strip()]
    return write_link(args.role, peers, hc, Path(tempfile.mkdtemp(prefix="gamgin-link-")))


def cmd_graph(args: argparse.Namespace) -> int:
    config_dir = Path(args.config) if args.config else default_config_dir()
    graph = load_graph(config_dir / "graph.yaml")
    for n in graph.nodes:
        flags = (" [audio]" if n.audio else "") + (f" [process {n.process}]" if n.process else "")
        flags += f" [{n.role}]" if n.role else ""
        print(f"{graph.namespace}/{n.name:10s} {n.package}/{n.executable}{flags}  "
              f"params: {', '.join(n.params) or '-'}  {n.description}")
    units = graph.units()
    print(f"{len(graph.nodes)} nodes in {len(units)} processes: "
          + ", ".join(f"{u.name}({'+'.join(n.name for n in u.nodes)})" if u.composed else u.name
                      for u in units))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gamgin", description="gamgin (金坚) voice companion")
    sub = p.add_subparsers(dest="cmd", required=True)

    up = sub.add_parser("up", help="start the whole graph (a process per node or per "
                                   "graph.yaml `process`)")
    up.add_argument("--no-audio", action="store_true", help="all but the microphone and speaker")
    up.add_argument("--only", help="comma-separated node names to start")
    up.add_argument("--role", choices=ROLES, default="all",
                    help="one host's share of a split graph: robot (ears, voice, turns, "
                    "devices) or brain (STT, LLM, TTS, knowledge); default all")
    up.add_argument("--peer", help="the other host(s) of a split graph (comma-separated "
                    "addresses): discovered by unicast, the graph stays closed to the rest "
                    "of the network")
    up.add_argument("--secure", action="store_true",
                    help="require the encrypted link (TLS, `gamgin pair`) to --peer; the "
                    "default once this host is paired")
    up.add_argument("--insecure", action="store_true",
                    help="link to --peer in clear (UDP unicast) even when paired")
    up.add_argument("--exclude", help="comma-separated node names to leave out")
    up.add_argument("--lan", action="store_true",
                    help="let other hosts on the network see the graph (default: this host only)")
    up.add_argument("--profile", help="config/profiles/<NAME>.yaml on top: small-robot, gpu")
    up.add_argument("--no-bridge", action="store_true", help="do not start the Foxglove bridge")
    up.add_argument("--no-standby", action="store_true",
                    help="no spare process for fast restarts of stt/llm/tts (saves its memory)")
    up.add_argument("--standby-delay", type=float, default=10.0,
                    help="seconds after start (or a take-over) before the spare process starts")
    up.add_argument("--bridge-host", help="Foxglove bridge address (default 127.0.0.1)")
    up.add_argument("--bridge-port", help="Foxglove bridge port (default 8765)")
    up.add_argument("--config", help="config directory (default: the workspace's config/)")
    up.add_argument("--log-dir", help="where each node's log is written")
    up.set_defaults(func=cmd_up)

    g = sub.add_parser("graph", help="print the graph description")
    g.add_argument("--config")
    g.set_defaults(func=cmd_graph)

    b = sub.add_parser("bench", help="benchmarks: " + ", ".join(BENCHES))
    b.add_argument("name", choices=sorted(BENCHES))
    b.add_argument("rest", nargs=argparse.REMAINDER)
    b.set_defaults(func=lambda a: _run_module(BENCHES[a.name], a.rest))

    w = sub.add_parser("wake", help="wake word tools: enroll, train")
    w.add_argument("action", choices=sorted(WAKE))
    w.add_argument("rest", nargs=argparse.REMAINDER)
    w.set_defaults(func=lambda a: _run_module(WAKE[a.action], a.rest))

    for name, module in DELEGATED.items():
        d = sub.add_parser(name, help=f"see `gamgin {name} --help`", add_help=False)
        d.add_argument("rest", nargs=argparse.REMAINDER)
        d.set_defaults(func=lambda a, m=module: _run_module(m, a.rest))
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in DELEGATED:
        # argparse's REMAINDER would not pass on a leading --option; hand over directly
        return _run_module(DELEGATED[argv[0]], argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except GraphError as exc:
        print(f"gamgin: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
