"""A spare node process that `gamgin up` keeps ready, and that becomes a stage that crashed.

A restarted stage used to pay, after the crash: Python start and imports (0.6-1.0 s), model
loading, and the DDS discovery of its new participant by a dozen peers (0.2-3.8 s, median
~1.3 s, measured: `gamgin bench recovery`). The standby pays the first and the last before
any crash: it starts with the supervisor's environment, imports the stages it may become,
and holds a DDS participant (a hidden node) that every peer already knows. Told which stage
to be (one JSON line on stdin: the stage's entry script and its ROS arguments), it runs that
script in-process: the stage's node is created in the same, known participant, so only its
endpoints are new (matched in milliseconds), and only the models remain to load.

Run by the supervisor as ``python -m gamgin_common.standby --preload llm_node stt_node ...``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import runpy
import select
import sys
import time

from gamgin_common.paths import entry_point

READY = "standby: ready"  # the line the supervisor waits for
became_at: float | None = None  # wall time the standby became a stage (for the startup line)


def entry_module(executable: str) -> str | None:
    """The module behind a console script (e.g. llm_node -> gamgin_llm.node)."""
    target = entry_point(executable)
    return target.partition(":")[0] if target else None


def wait_for_command(stop) -> dict | None:
    """One JSON line from stdin; None if we are asked to stop or the supervisor is gone."""
    buf = b""
    fd = sys.stdin.fileno()
    while not stop.requested:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:  # EOF: the supervisor closed our stdin or died
            return None
        buf += chunk
        if b"\n" in buf:
            return json.loads(buf.split(b"\n", 1)[0])
    return None


def main(argv: list[str] | None = None) -> int:
    global became_at
    ap = argparse.ArgumentParser(prog="gamgin standby", description=__doc__)
    ap.add_argument("--preload", nargs="*", default=[],
                    help="console-script names of the stages this standby may become")
    args = ap.parse_args(argv)

    from gamgin_common.shutdown import StopSignals, die_with_parent, exit_process

    die_with_parent()
    stop = StopSignals("standby").install()
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    rclpy.init(args=[], signal_handler_options=SignalHandlerOptions.NO)
    # The participant peers discover now, long before it is needed. Hidden (leading "_"):
    # `ros2 node list` does not show it; it stays for the life of the process.
    holder = rclpy.create_node(f"_gamgin_standby_{os.getpid()}")
    t0 = time.monotonic()
    for exe in args.preload:
        module = entry_module(exe)
        if module is None:
            print(f"standby: no console script {exe!r} to preload", flush=True)
            continue
        mod = importlib.import_module(module)
        # a stage may load here what every configuration of it needs (not its models: those
        # depend on its parameters), e.g. the LLM's jieba dictionary, 0.6 s
        prewarm = getattr(mod, "standby_prewarm", None)
        if callable(prewarm):
            try:
                prewarm()
            except Exception as exc:  # only a slower take-over: say so, stay ready
                print(f"standby: prewarm of {module} failed: {exc}", flush=True)
    print(f"{READY} (preloaded {', '.join(args.preload) or 'nothing'} in "
          f"{time.monotonic() - t0:.2f} s)", flush=True)
    cmd = wait_for_command(stop)
    if cmd is None:
        holder.destroy_node()
        rclpy.try_shutdown()
        exit_process(0)
    # run as `python -m`, this file is __main__: run_stage reads the importable module
    from gamgin_common import standby as this

    this.became_at = became_at = time.time()
    stop.restore()  # the stage's run_stage installs its own
    sys.argv = [cmd["script"], *cmd["args"]]
    runpy.run_path(cmd["script"], run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
