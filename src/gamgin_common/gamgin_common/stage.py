"""The ROS shell every gamgin node shares: a managed (lifecycle) node with diagnostics.

A stage node only wires its pure-Python core to ROS. This base gives each one:
- lifecycle: models load in ``configure_stage`` and are freed in ``cleanup_stage``, so a
  supervisor can unload a stage to save memory (``autostart`` configures and activates
  on start, which is what `gamgin up` and the launch file rely on);
- errors that keep the node alive: a failed configure is logged, reported as ERROR on
  /diagnostics with its reason, and retried with backoff (e.g. until the model file
  appears), instead of crashing the process;
- /diagnostics at 1 Hz and on change, with key values, counters and the process RSS.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.signals import SignalHandlerOptions

from gamgin_common import qos
from gamgin_common.executor import SteadyExecutor
from gamgin_common.health import ERROR, OK, WARN, Health
from gamgin_common.shutdown import (
    LEAVE_GRAPH_S,
    Deadline,
    StopSignals,
    die_with_parent,
    exit_process,
    run_bounded,
    say,
)


class StageError(RuntimeError):
    """A stage cannot work; the message is what a person should read (and how to fix it)."""


class StageNode(LifecycleNode):
    """Subclass and implement ``configure_stage`` / ``cleanup_stage``."""

    def __init__(self, name: str, **kwargs) -> None:
        if _node_cli_args is not None:  # a standby became this stage: its ROS args are ours
            kwargs.setdefault("cli_args", _node_cli_args)
        super().__init__(name, **kwargs)
        self.health = Health()
        self.autostart = bool(self.declare_parameter("autostart", True).value)
        self.retry_max_s = float(self.declare_parameter("retry_max_s", 60.0).value)
        self._entities: list = []  # publishers/subscriptions/services made by configure_stage
        self._log_next: dict[str, float] = {}  # log_throttled: when each key may log again
        self._retry_s = 2.0
        self._retry_timer = None
        self._proc = psutil.Process(os.getpid())
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
        self.create_timer(1.0, self.publish_diagnostics)
        self.create_timer(0.1, self._publish_diagnostics_on_change)

    # ------------------------------------------------------------------ for subclasses
    def configure_stage(self) -> None:
        """Load models, create topics/services (use the ``stage_*`` helpers). Raise StageError."""

    def activate_stage(self) -> None:
        """Start processing (e.g. open the audio device)."""

    def deactivate_stage(self) -> None:
        """Stop processing, keep models loaded."""

    def cleanup_stage(self) -> None:
        """Free what configure_stage loaded."""

    def log_throttled(self, key: str, period_s: float, message: str,
                      level: str = "warning") -> None:
        """Log at most once per ``period_s`` for ``key``; a suppressed call costs nothing.
        rclpy's ``throttle_duration_sec`` inspects the caller's frame and source on every
        call, suppressed or not (~7 ms per malformed chunk under a flood, measured: the
        speaker fell 500 chunks behind and its queue dropped them)."""
        now = time.monotonic()
        if now < self._log_next.get(key, 0.0):
            return
        self._log_next[key] = now + period_s
        getattr(self.get_logger(), level)(message)

    def stage_publisher(self, msg_type, topic: str, qos_profile):
        pub = self.create_publisher(msg_type, topic, qos_profile)
        self._entities.append(pub)
        return pub

    def stage_subscription(self, msg_type, topic: str, callback: Callable, qos_profile, **kw):
        sub = self.create_subscription(msg_type, topic, callback, qos_profile, **kw)
        self._entities.append(sub)
        return sub

    def stage_service(self, srv_type, name: str, callback: Callable, **kw):
        srv = self.create_service(srv_type, name, callback, **kw)
        self._entities.append(srv)
        return srv

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self.autostart:
            self._try_bring_up()

    def _try_bring_up(self) -> None:
        if self._retry_timer is not None:
            self.destroy_timer(self._retry_timer)
            self._retry_timer = None
        if self._state_machine.current_state[1] == "unconfigured":
            self.trigger_configure()
        if self._state_machine.current_state[1] == "inactive":
            self.trigger_activate()
        if self._state_machine.current_state[1] != "active" and self.autostart:
            self.get_logger().warning(f"not active; retrying in {self._retry_s:.0f} s")
            self._retry_timer = self.create_timer(self._retry_s, self._try_bring_up)
            self._retry_s = min(self._retry_s * 2, self.retry_max_s)

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.health.warn("configuring")
        try:
            self.configure_stage()
        except Exception as exc:
            reason = str(exc) if isinstance(exc, StageError) else f"{type(exc).__name__}: {exc}"
            self.get_logger().error(f"configure failed: {reason}")
            self._destroy_entities()
            self.health.error(reason)
            self.health.count("configure_failures")
            return TransitionCallbackReturn.FAILURE
        self._retry_s = 2.0
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.activate_stage()
        except Exception as exc:
            self.get_logger().error(f"activate failed: {exc}")
            self.health.error(str(exc))
            return TransitionCallbackReturn.FAILURE
        if self.health.level != ERROR:
            self.health.ok("ready" if self.health.level == WARN else self.health.message)
        self.get_logger().info(f"active: {self.health.message}")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.deactivate_stage()
        self.health.warn("inactive")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.cleanup_stage()
        self._destroy_entities()
        self.health.warn("unconfigured (models unloaded)")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if state.label == "active":
            self.deactivate_stage()
        if state.label in ("active", "inactive"):
            self.cleanup_stage()
        return TransitionCallbackReturn.SUCCESS

    def release(self) -> None:
        """Stop and free everything, whatever the state (used at process exit)."""
        label = self._state_machine.current_state[1]
        try:
            if label == "active":
                self.deactivate_stage()
            if label in ("active", "inactive"):
                self.cleanup_stage()
        except Exception as exc:
            print(f"[{self.get_name()}] error while releasing: {exc}")

    def _destroy_entities(self) -> None:
        for ent in self._entities:
            destroyers = (self.destroy_publisher, self.destroy_subscription, self.destroy_service)
            for destroy in destroyers:
                try:
                    if destroy(ent):
                        break
                except (TypeError, AttributeError):
                    continue
        self._entities.clear()

    # ------------------------------------------------------------------ diagnostics
    def publish_diagnostics(self) -> None:
        level, message, values = self.health.snapshot()
        values["lifecycle"] = self._state_machine.current_state[1]
        values["rss_mb"] = f"{self._proc.memory_info().rss / 1e6:.1f}"
        values["pid"] = str(self._proc.pid)
        status = DiagnosticStatus(
            level=bytes([level]),
            name=self.get_fully_qualified_name(),
            message=message,
            hardware_id="gamgin",
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )
        arr = DiagnosticArray(status=[status])
        arr.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(arr)

    def _publish_diagnostics_on_change(self) -> None:
        if self.health.changed:
            self.publish_diagnostics()


LEVELS = {"OK": OK, "WARN": WARN, "ERROR": ERROR}
_node_cli_args: list[str] | None = None  # the next node's own ROS args (standby, container)


@dataclass
class StageSpec:
    """One node of a process: its class, its own ROS arguments, the executor threads it wants."""

    node_cls: type[StageNode]
    args: list[str] | None = None  # None: the process's command line
    threads: int = 1


# set by the stage container while it reads each stage's main(): run_stage then records the
# node instead of running it (gamgin_common.container)
_collecting: list[StageSpec] | None = None


def run_stage(node_cls: type[StageNode], args: list[str] | None = None, threads: int = 1) -> None:
    """main() of every stage node: init, autostart, spin, and a clean stop on SIGINT/SIGTERM.

    Stage callbacks only hand work to the node's own worker threads, so one executor
    thread serves them best (a burst of 300 speech chunks: 25 ms, against 65 ms for
    rclpy's MultiThreadedExecutor, which can also spin a core: see executor.py). A node
    whose callbacks block (knowledge: a long ingest while searches are served) asks for
    more threads and gets the SteadyExecutor."""
    spec = StageSpec(node_cls, None if args is None else list(args), threads)
    if _collecting is not None:
        _collecting.append(spec)
        return
    run_stages([spec])


def run_stages(specs: list[StageSpec], process: str = "") -> None:
    """Run one node, or several in this process (``process``: the container's name; each
    spec then carries its node's own ROS arguments), until SIGINT/SIGTERM.

    The stop is ours, not rclpy's (see shutdown.py): a signal only sets a flag; the spin
    loop sees it within 0.1 s; the stages' workers stop while the context is still valid
    (no publish into a dead context); then the nodes and the context go. A deadline ends
    the process if any of that hangs, so a process is gone within 2 s of the signal."""
    global _node_cli_args
    die_with_parent()
    stop = StopSignals(process or specs[0].node_cls.__name__).install()
    t_imported = time.time()
    from gamgin_common import standby

    standby_stage = standby.became_at is not None and rclpy.ok()
    if standby_stage:
        # a standby process became this stage: rclpy and its DDS participant are up (and
        # known to every peer); the node takes the ROS arguments the stage was given
        t_started = standby.became_at
        args = specs[0].args
        specs = [StageSpec(specs[0].node_cls, list(args if args is not None else sys.argv[1:]),
                           specs[0].threads)]
    else:
        t_started = psutil.Process().create_time()
        # composed: no process-wide ROS arguments; each node gets its own (cli_args)
        rclpy.init(args=[] if process else specs[0].args,
                   signal_handler_options=SignalHandlerOptions.NO)
    nodes: list[StageNode] = []
    executor = None
    code = 0
    try:
        for spec in specs:
            t_node0 = time.time()
            _node_cli_args = spec.args if (process or standby_stage) else None
            node = spec.node_cls()
            if not process:
                stop.name = node.get_name()
            nodes.append(node)
            t_node = time.time()
            node.start()
            # where a (re)start's seconds go: `gamgin bench recovery` reads this line
            node.get_logger().info(
                f"startup: {'standby, ' if standby_stage else ''}"
                f"{f'in process {process}, ' if process else ''}"
                f"process+imports {t_imported - t_started:.2f} s, "
                f"rclpy+node {t_node - (t_node0 if nodes[:-1] else t_imported):.2f} s, "
                f"configure+activate {time.time() - t_node:.2f} s "
                f"({node._state_machine.current_state[1]})")
        threads = max(s.threads for s in specs)
        executor = (SingleThreadedExecutor() if threads <= 1
                    else SteadyExecutor(num_threads=threads))
        for node in nodes:
            executor.add_node(node)
        stop.on_stop.append(executor.wake)
        while not stop.requested and rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except _rclpy.RCLError:
        # the context was shut down under the executor (by another owner of the context)
        if rclpy.ok():
            code = 1
            raise
    except BaseException:
        code = 1  # a real crash: the traceback is printed, the supervisor restarts us
        raise
    finally:
        deadline = Deadline(name=stop.name, code=code).arm()
        deadline.enter("releasing the stages (worker threads, models)")
        for node in reversed(nodes):  # the last started goes first, as a container does
            node.release()
        if executor is not None:
            deadline.enter("executor shutdown")
            executor.shutdown(timeout_sec=0.2)  # callbacks only enqueue; ingest gives up
        deadline.enter("destroying the nodes and the DDS participant")
        context = rclpy.get_default_context()

        def leave_graph() -> None:
            for node in reversed(nodes):
                node.destroy_node()
            rclpy.try_shutdown()
            context.destroy()  # the DDS participant leaves now: peers see it go at once

        # Fast DDS can block for seconds deleting an endpoint while many participants leave
        # at once (seen when a whole graph stops: 5 of 12 nodes, each time in destroy_node).
        # Our work is done by now, so the wait is bounded; peers then drop us by lease.
        left = run_bounded(leave_graph, LEAVE_GRAPH_S)
        if not left:
            say(f"[{stop.name}] DDS entities not deleted within {LEAVE_GRAPH_S:.1f} s; "
                "exiting without waiting for them")
        if code == 0:
            exit_process(0, stuck=not left)
        # a crash: the deadline stays armed while the traceback is printed and Python exits
        stop.restore()
