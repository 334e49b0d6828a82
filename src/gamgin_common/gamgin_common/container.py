"""Several stage nodes in one process: what a ROS 2 component container is for C++ nodes.

    stage_container --process base \\
        --stage gamgin_turn/turn_node --ros-args -r __node:=turn -r __ns:=/gamgin ... \\
        --stage gamgin_audio/mic_node --ros-args -r __node:=mic ...

Each ``--stage`` names a node's package and executable (its console script) and is followed
by that node's own ROS arguments, exactly those it would get alone. The stage's ``main()``
is called as usual; ``run_stage`` in it only records the node (``stage._collecting``), and
the container then runs them all in one rclpy context, one DDS participant and one
executor, with the same clean stop as a node alone (``stage.run_stages``).

Why: a light node alone costs ~45 MB PSS of interpreter, rclpy and DDS for a few kB of its
own state (`gamgin bench memory`). Shared fate is the price: one node's crash restarts the
process, so only nodes that are light and well-behaved are composed (config/graph.yaml).
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field

from gamgin_common.paths import entry_point


class ContainerError(ValueError):
    """The command line does not describe a container; the message says what is wrong."""


@dataclass
class StageArgs:
    package: str
    executable: str
    ros_args: list[str] = field(default_factory=list)


def parse(argv: list[str]) -> tuple[str, list[StageArgs]]:
    process, stages = "", []
    i = 0
    while i < len(argv):
        if argv[i] == "--process" and i + 1 < len(argv):
            process, i = argv[i + 1], i + 2
        elif argv[i] == "--stage" and i + 1 < len(argv):
            package, _, exe = argv[i + 1].partition("/")
            if not package or not exe:
                raise ContainerError(f"--stage wants <package>/<executable>, got {argv[i + 1]!r}")
            stages.append(StageArgs(package, exe))
            i += 2
        elif stages:
            stages[-1].ros_args.append(argv[i])
            i += 1
        else:
            raise ContainerError(f"unexpected argument {argv[i]!r} before the first --stage")
    if not stages:
        raise ContainerError("no --stage given: nothing to run")
    return process or "container", stages


def collect(stages: list[StageArgs]) -> list:
    """The StageSpec of each stage, from its own main() (which then does not run it)."""
    from gamgin_common import stage

    specs: list[stage.StageSpec] = []
    stage._collecting = specs
    try:
        for s in stages:
            target = entry_point(s.executable)
            if target is None or target.split(".")[0] != s.package:
                raise ContainerError(f"no executable {s.executable!r} in package {s.package!r} "
                                     "(is the workspace built and sourced?)")
            module, _, attr = target.partition(":")
            before = len(specs)
            getattr(importlib.import_module(module), attr or "main")(s.ros_args)
            if len(specs) != before + 1:
                raise ContainerError(f"{s.package}/{s.executable}: its main() does not call "
                                     "run_stage once, so it cannot be composed")
    finally:
        stage._collecting = None
    return specs


def main(argv: list[str] | None = None) -> int:
    try:
        process, stages = parse(list(sys.argv[1:] if argv is None else argv))
        from gamgin_common.stage import run_stages

        specs = collect(stages)
    except ContainerError as exc:
        print(f"stage_container: {exc}", file=sys.stderr)
        return 2
    run_stages(specs, process=process)
    return 0


if __name__ == "__main__":
    sys.exit(main())
