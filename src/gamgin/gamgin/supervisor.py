"""`gamgin up`: run every node of the graph in its own process, restart what crashes,
stop everything cleanly on Ctrl-C. Pure Python (subprocess), no ROS import: it must
work even when a node's Python environment is broken, and report that clearly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from gamgin.graph import Graph, GraphNode, Unit
from gamgin_common.paths import find_executable
from gamgin_common.shutdown import DIE_WITH_PARENT_ENV, PARENT_PID_ENV

COLORS = ["\033[36m", "\033[32m", "\033[33m", "\033[35m", "\033[34m", "\033[91m", "\033[92m"]
RESET = "\033[0m"


@dataclass
class Child:
    unit: Unit  # one node, or several composed in one process (graph.yaml's `process`)
    cmd: list[str]
    proc: subprocess.Popen | None = None
    started: float = 0.0
    restarts: int = 0
    backoff: float = 0.0  # the first crash restarts at once: a turn is waiting on this node
    next_start: float = 0.0
    reader: threading.Thread | None = None
    exit_codes: list[int] = field(default_factory=list)
    exe: str = ""  # the stage's entry script; cmd = [*prefix, exe, *ros_args]
    ros_args: list[str] = field(default_factory=list)

    @property
    def node(self) -> GraphNode:
        return self.unit.node

    @property
    def name(self) -> str:
        return self.unit.name


@dataclass
class Standby:
    """The spare process (gamgin_common.standby) and whose output it is now writing."""
    proc: subprocess.Popen
    owner: str = "standby"
    ready: threading.Event = field(default_factory=threading.Event)
    reader: threading.Thread | None = None


class Supervisor:
    def __init__(self, graph: Graph, nodes: list[GraphNode], config_dir: Path,
                 env: dict[str, str] | None = None, out: TextIO = sys.stdout,
                 log_dir: Path | None = None, color: bool | None = None,
                 max_backoff: float = 10.0, healthy_after: float = 30.0,
                 overrides: dict[str, dict[str, str]] | None = None,
                 standby: bool = True, standby_delay: float = 10.0,
                 env_for: Callable[[dict[str, str]], dict[str, str]] | None = None) -> None:
        self.graph, self.config_dir = graph, config_dir
        self.env = dict(env if env is not None else os.environ)
        # per-process environment on top of env (gamgin.pair.SlotPicker: the link port of
        # each robot process), asked again at every (re)start
        self.env_for = env_for
        # Each node asks the kernel to kill it when we die, even by SIGKILL (run_stage,
        # gamgin_common.shutdown): its own session keeps Ctrl-C ours, but no orphan survives.
        self.env[DIE_WITH_PARENT_ENV] = "1"
        self.env[PARENT_PID_ENV] = str(os.getpid())
        self.out = out
        self.log_dir = log_dir
        self.color = out.isatty() if color is None else color
        self.max_backoff, self.healthy_after = max_backoff, healthy_after
        self._stopping = threading.Event()
        self._out_lock = threading.Lock()
        self.children: list[Child] = []
        # command-line flags beat params files
        extra = {name: [a for k, v in kv.items() for a in ("-p", f"{k}:={v}")]
                 for name, kv in (overrides or {}).items()}
        container = ""
        for unit in graph.units(nodes):
            node = unit.node
            exe = str(find_executable(node.package, node.executable))
            if unit.composed:
                container = container or str(find_executable("gamgin_common", "stage_container"))
            cmd = unit.command(graph.namespace, config_dir, exe, container, extra)
            args = [*node.ros_args(graph.namespace, config_dir), *extra.get(node.name, [])]
            self.children.append(Child(unit, cmd, exe=exe, ros_args=args))
        # One spare process for the stages marked `standby: true` in graph.yaml: a crashed
        # one is taken over by it instead of a cold start (see gamgin_common/standby.py).
        # Started `standby_delay` s after the graph (or a take-over), off the busy moments.
        self.standby_exes = sorted({c.node.executable for c in self.children if c.node.standby})
        self.standby_enabled = standby and bool(self.standby_exes)
        self.standby: Standby | None = None
        self.standby_delay = standby_delay
        self._standby_due = 0.0
        width = max((len(c.name) for c in self.children), default=4)
        self._prefix = {c.name: c.name.ljust(width) for c in self.children}
        self.on_event: Callable[[str, Child], None] = lambda kind, child: None

    # ------------------------------------------------------------------ output
    def say(self, line: str, name: str = "gamgin") -> None:
        prefix = self._prefix.get(name, name)
        if self.color:
            idx = [c.name for c in self.children].index(name) if name in self._prefix else -1
            col = COLORS[idx % len(COLORS)] if idx >= 0 else "\033[1m"
            prefix = f"{col}{prefix}{RESET}"
        with self._out_lock:
            self.out.write(f"[{prefix}] {line}\n")
            self.out.flush()

    def _pump(self, label: Callable[[], str], proc: subprocess.Popen,
              on_line: Callable[[str], None] | None = None) -> None:
        """Copy a process's output to our output and to <log_dir>/<label>.log; the label
        can change while it runs (a standby becoming a stage)."""
        logs: dict[str, object] = {}
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            name = label()
            line = raw.decode(errors="replace").rstrip("\n")
            if self.log_dir:
                if name not in logs:
                    logs[name] = open(self.log_dir / f"{name}.log", "ab")
                logs[name].write(raw)
                logs[name].flush()
            self.say(line, name)
            if on_line:
                on_line(line)
        for f in logs.values():
            f.close()

    # ------------------------------------------------------------------ processes
    def _process_env(self) -> dict[str, str]:
        return self.env_for(self.env) if self.env_for else self.env

    def _start(self, child: Child) -> None:
        if child.restarts and child.node.standby and self._take_standby(child):
            return
        child.proc = subprocess.Popen(
            child.cmd, env=self._process_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches only us; we stop the children in order
        )
        child.started = time.monotonic()
        name = child.name
        child.reader = threading.Thread(target=self._pump, args=(lambda: name, child.proc),
                                        daemon=True)
        child.reader.start()
        what = ", ".join(f"{n.package}/{n.executable} as {self.graph.namespace}/{n.name}"
                         for n in child.unit.nodes)
        self.say(f"started {what} (pid {child.proc.pid}"
                 f"{', one process' if child.unit.composed else ''})")
        self.on_event("started", child)

    # ------------------------------------------------------------------ standby
    def _start_standby(self) -> None:
        from gamgin_common import standby as sb_mod

        proc = subprocess.Popen(
            [sys.executable, "-m", "gamgin_common.standby", "--preload", *self.standby_exes],
            env=self._process_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.PIPE, start_new_session=True)
        sb = Standby(proc)

        def on_line(line: str) -> None:
            if line.startswith(sb_mod.READY):
                sb.ready.set()
        sb.reader = threading.Thread(target=self._pump, args=(lambda: sb.owner, proc, on_line),
                                     daemon=True)
        sb.reader.start()
        self.standby = sb

    def _take_standby(self, child: Child) -> bool:
        """Hand a crashed stage to the ready standby; False: start it the usual way."""
        sb = self.standby
        if sb is None or not sb.ready.is_set() or sb.proc.poll() is not None:
            return False
        cmd = json.dumps({"script": child.exe, "args": child.ros_args}) + "\n"
        try:
            assert sb.proc.stdin is not None
            sb.proc.stdin.write(cmd.encode())
            sb.proc.stdin.flush()
        except (OSError, ValueError):
            return False
        sb.owner = child.name
        child.proc, child.reader, child.started = sb.proc, sb.reader, time.monotonic()
        self.standby = None
        self._standby_due = time.monotonic() + self.standby_delay
        self.say(f"{child.name} taken over by the standby process (pid {sb.proc.pid})")
        self.on_event("started", child)
        return True

    def _keep_standby(self, now: float) -> None:
        if not self.standby_enabled or self._stopping.is_set():
            return
        sb = self.standby
        if sb is not None and sb.proc.poll() is not None:  # it died: make another later
            self.say(f"standby exited with {sb.proc.returncode}")
            self.standby, self._standby_due = None, now + self.standby_delay
        if self.standby is None and now >= self._standby_due:
            self._start_standby()

    def start_all(self) -> None:
        if self.log_dir:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        for child in self.children:
            self._start(child)
        self._standby_due = time.monotonic() + self.standby_delay

    def poll(self) -> None:
        """Restart crashed children with exponential backoff (reset after a healthy run)."""
        now = time.monotonic()
        self._keep_standby(now)
        for child in self.children:
            proc = child.proc
            if proc is not None and proc.poll() is not None:
                code = proc.returncode
                child.exit_codes.append(code)
                child.proc = None
                if child.reader:
                    child.reader.join(timeout=1.0)
                if not child.node.respawn:
                    self.say(f"{child.name} exited with {code}; respawn is off")
                    continue
                if now - child.started > self.healthy_after:
                    child.backoff = 0.0
                child.next_start = now + child.backoff
                self.say(f"{child.name} exited with {code}; "
                         f"restarting in {child.backoff:.1f} s")
                # a node that keeps crashing backs off: 0, 0.5, 1, 2 ... max_backoff
                child.backoff = min(max(child.backoff * 2, 0.5), self.max_backoff)
                self.on_event("exited", child)
            if child.proc is None and child.next_start and now >= child.next_start:
                child.next_start = 0.0
                child.restarts += 1
                self._start(child)

    def stop_all(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        live = [c for c in self.children if c.proc is not None and c.proc.poll() is None]
        for c in live:
            c.proc.send_signal(signal.SIGINT)
        if self.standby is not None and self.standby.proc.poll() is None:
            self.standby.proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout
        for c in live:
            try:
                c.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{c.name} did not stop in {timeout:.0f} s; killing it")
                os.killpg(c.proc.pid, signal.SIGKILL)
                c.proc.wait()
        if self.standby is not None:
            try:
                self.standby.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.standby.proc.kill()
        for c in self.children:
            if c.reader:
                c.reader.join(timeout=1.0)

    def run(self) -> int:
        """Start, supervise until SIGINT/SIGTERM, stop. Returns the exit code for the CLI."""
        stop = threading.Event()

        def handler(signum, frame):
            stop.set()

        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start_all()
            while not stop.wait(0.05):  # a crash is seen in 50 ms: a turn may wait
                self.poll()
            self.say("stopping all nodes")
        finally:
            self.stop_all()
            for s, h in old.items():
                signal.signal(s, h)
        self.say("stopped")
        return 0
