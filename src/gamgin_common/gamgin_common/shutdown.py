"""How a node process ends: on SIGINT/SIGTERM, in order, within a deadline, never orphaned.

Pure Python (no ROS import), used by ``stage.run_stage``:

- ``StopSignals`` turns SIGINT and SIGTERM into a flag the spin loop reads. rclpy's own
  handler shuts the context down at once, while worker threads may still be publishing
  (``publisher's context is invalid`` tracebacks) and a destroy can then wait forever on
  an entity in use: we stop the workers first, with the context still valid.
- ``Deadline`` ends the process with ``os._exit`` if the orderly stop has not finished in
  time (a DDS entity that will not be destroyed, a native call that does not return):
  a node that was asked to stop is gone within ``STOP_DEADLINE_S``, whatever it hangs in.
  A second signal during the stop exits at once.
- ``die_with_parent`` asks Linux to kill the node when its supervisor dies (even by
  SIGKILL), so `gamgin up` or `ros2 launch` killed hard leaves no orphan serving devices.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

STOP_DEADLINE_S = 1.3  # the orderly part of a stop; the process is gone well within 2 s
LEAVE_GRAPH_S = 0.5  # deleting DDS entities and the participant, at most
PR_SET_PDEATHSIG = 1  # linux/prctl.h
DIE_WITH_PARENT_ENV = "GAMGIN_DIE_WITH_PARENT"  # "1": set by gamgin up and the launch file
PARENT_PID_ENV = "GAMGIN_PARENT_PID"  # the supervisor's pid, to catch a parent already gone


def flush_all() -> None:
    """Python's and C's buffered output (rcutils logs through C stdio): os._exit skips both."""
    import logging

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    logging.shutdown()
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass


def say(line: str) -> None:
    """One line to stderr with no lock a stuck thread could hold (no stdio, no logging)."""
    try:
        os.write(2, (line + "\n").encode(errors="replace"))
    except OSError:
        pass


def _exit_now(code: int, why: str) -> None:
    say(why)  # and nothing that could block: this runs because something is stuck
    os._exit(code)


def run_bounded(fn, seconds: float) -> bool:
    """Run ``fn`` in a daemon thread; True if it finished within ``seconds`` (an exception
    in it counts as finished: it is printed on stderr)."""
    done = threading.Event()

    def target() -> None:
        try:
            fn()
        except Exception as exc:
            say(f"{type(exc).__name__}: {exc}")
        finally:
            done.set()

    threading.Thread(target=target, daemon=True, name="bounded").start()
    return done.wait(seconds)


def exit_process(code: int = 0, stuck: bool = False) -> None:
    """End the process now that everything of ours is released. Interpreter teardown of a
    node (module and C++ static destructors of ONNX Runtime, CTranslate2, llama.cpp) costs
    ~0.4 s of CPU per process: with a whole graph stopping at once on 2 cores that was
    1-2 s of the 2 s a stop may take, for nothing the OS would not free anyway.
    ``stuck``: a thread is still inside DDS, and may hold C stdio's lock (its logging):
    flush only Python's own buffers, which it cannot hold."""
    if stuck:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
    else:
        flush_all()
    os._exit(code)


class StopSignals:
    """SIGINT/SIGTERM set ``requested`` (and the name of the signal) instead of raising."""

    def __init__(self, name: str = "node") -> None:
        self.name = name
        self._event = threading.Event()
        self.signal_name = ""
        self.on_stop: list = []  # callables run from the handler, e.g. an executor wake-up
        self._previous: dict[int, object] = {}

    def install(self) -> StopSignals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def _handle(self, signum: int, frame) -> None:
        if self._event.is_set():  # asked twice: the person wants it gone now
            _exit_now(0, f"[{self.name}] second {signal.Signals(signum).name}: exiting now")
        self.signal_name = signal.Signals(signum).name
        self._event.set()
        for cb in self.on_stop:
            try:
                cb()
            except Exception:  # a wake-up that fails only costs the 0.1 s poll
                pass

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def request(self) -> None:
        """Ask for a stop from code (tests, a fatal error in a worker)."""
        self._event.set()


class Deadline:
    """``arm()`` starts a timer that ends the process with ``code`` after ``seconds``."""

    def __init__(self, seconds: float = STOP_DEADLINE_S, name: str = "node",
                 code: int = 0) -> None:
        self.seconds, self.name, self.code = seconds, name, code
        self.phase = "stopping"
        self._timer: threading.Timer | None = None
        self._t0 = 0.0

    def arm(self) -> Deadline:
        self._t0 = time.monotonic()
        self._timer = threading.Timer(self.seconds, self._expired)
        self._timer.daemon = True
        self._timer.start()
        return self

    def enter(self, phase: str) -> None:
        self.phase = phase

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _expired(self) -> None:
        _exit_now(self.code, f"[{self.name}] stop did not finish in {self.seconds:.1f} s "
                             f"(stuck in: {self.phase}); exiting now")


def _prctl_pdeathsig(sig: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def die_with_parent(env: dict[str, str] | None = None) -> bool:
    """If the environment asks for it, have the kernel SIGKILL us when our parent dies.

    SIGKILL, not SIGTERM: a supervisor that was killed cannot wait for a graceful stop,
    and an orphan must not keep serving devices/* for even a second. Returns True when
    armed. A parent that died before we got here (we were re-parented) ends us now."""
    env = os.environ if env is None else env
    if env.get(DIE_WITH_PARENT_ENV) != "1" or not sys.platform.startswith("linux"):
        return False
    if not _prctl_pdeathsig(signal.SIGKILL):
        return False
    expected = env.get(PARENT_PID_ENV, "")
    ppid = os.getppid()
    if ppid == 1 or (expected.isdigit() and int(expected) != ppid):
        _exit_now(0, "parent already gone: not starting")
    return True
