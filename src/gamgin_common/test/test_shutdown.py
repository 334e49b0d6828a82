"""gamgin_common.shutdown in real processes: signals, the stop deadline, death with the parent."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil

from gamgin_common import testing

PY = sys.executable


def run_py(code: str, env: dict | None = None, **kw) -> subprocess.Popen:
    return subprocess.Popen([PY, "-c", textwrap.dedent(code)], env=env or dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def test_a_signal_sets_the_flag_and_a_second_one_exits_at_once():
    p = run_py("""
        import time
        from gamgin_common.shutdown import StopSignals
        s = StopSignals("t").install()
        print("ready", flush=True)
        while not s.requested:
            time.sleep(0.01)
        print("stop requested by", s.signal_name, flush=True)
        time.sleep(30)  # a stop that hangs: only the second signal ends it
    """)
    assert p.stdout.readline().strip() == "ready"
    p.send_signal(signal.SIGTERM)
    assert p.stdout.readline().strip() == "stop requested by SIGTERM"
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    assert p.wait(5) == 0 and time.monotonic() - t0 < 1.0
    assert "second SIGINT: exiting now" in p.stdout.read()


def test_the_deadline_ends_a_stop_that_hangs_and_says_where():
    p = run_py("""
        import time
        from gamgin_common.shutdown import Deadline
        d = Deadline(0.3, name="t").arm()
        d.enter("destroying the node")
        time.sleep(30)
    """)
    t0 = time.monotonic()
    assert p.wait(5) == 0
    assert time.monotonic() - t0 < 2.5
    assert "stuck in: destroying the node" in p.stdout.read()


def test_a_cancelled_deadline_does_not_fire():
    p = run_py("""
        import time
        from gamgin_common.shutdown import Deadline
        d = Deadline(0.2).arm()
        d.cancel()
        time.sleep(0.5)
        print("still here", flush=True)
    """)
    assert p.wait(5) == 0 and "still here" in p.stdout.read()


def parent_with_child(die_with_parent: bool) -> tuple[subprocess.Popen, int]:
    """A parent process (its own session) with one child that calls die_with_parent();
    returns the parent and the child's pid once the child has said whether it armed."""
    env = "GAMGIN_DIE_WITH_PARENT='1', GAMGIN_PARENT_PID=str(os.getpid())" if die_with_parent \
        else ""
    parent = run_py(f"""
        import os, subprocess, sys, time
        env = {{k: v for k, v in os.environ.items() if k != "GAMGIN_DIE_WITH_PARENT"}}
        env.update(dict({env}))
        child = subprocess.Popen([sys.executable, "-c",
            "import time; from gamgin_common.shutdown import die_with_parent; "
            "print(die_with_parent(), flush=True); time.sleep(60)"], env=env)
        print(child.pid, flush=True)
        time.sleep(60)
    """, start_new_session=True)
    child_pid = int(parent.stdout.readline())
    assert parent.stdout.readline().strip() == str(die_with_parent)  # armed or not
    return parent, child_pid


def alive(pid: int) -> bool:
    return psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE


def test_a_child_dies_with_its_parent_even_on_sigkill():
    parent, child_pid = parent_with_child(True)
    parent.kill()
    parent.wait(5)
    t0 = time.monotonic()
    assert testing.wait_for(lambda: not alive(child_pid), 2, interval=0.01)
    assert time.monotonic() - t0 < 1.0


def test_without_the_variable_a_child_outlives_its_parent():
    """The opposite case, so the test above cannot pass by accident."""
    parent, child_pid = parent_with_child(False)
    parent.kill()
    parent.wait(5)
    time.sleep(1.0)
    try:
        assert alive(child_pid)
    finally:
        os.kill(child_pid, signal.SIGKILL)


def test_a_parent_already_gone_means_no_start():
    env = dict(os.environ, GAMGIN_DIE_WITH_PARENT="1", GAMGIN_PARENT_PID="999999999")
    p = run_py("""
        from gamgin_common.shutdown import die_with_parent
        die_with_parent()
        print("started anyway", flush=True)
    """, env=env)
    out = p.communicate(timeout=10)[0]
    assert p.returncode == 0 and "parent already gone" in out and "started anyway" not in out
