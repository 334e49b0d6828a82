"""Memory-aware lifecycle: a stage frees its model on cleanup and loads it again on
configure, through the standard ROS 2 lifecycle services (what `ros2 lifecycle set` calls)."""

import psutil
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState

from gamgin_common import qos, testing

pytestmark = pytest.mark.integration


def change(probe, node: str, transition: int) -> bool:
    req = ChangeState.Request()
    req.transition.id = transition
    return probe.call(ChangeState, f"{node}/change_state", req, timeout=60).success


def test_llm_unloads_its_model_on_cleanup_and_reloads_on_configure(probe, node_env, tmp_path):
    diags = probe.collect(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
    params = {"fast_paths": "['gamgin_llm.router:StopHandler']", "retriever": "",
              "warmup": False}
    with testing.NodeProcess("gamgin_llm", "llm_node", "llm", node_env, params=params,
                             log_dir=str(tmp_path)) as node:
        def state() -> str:
            return probe.call(GetState, "/gamgin/llm/get_state", GetState.Request(),
                              timeout=30).current_state.label

        assert testing.wait_for(lambda: any(
            s.message and s.level == b"\x00" for s in probe.diagnostics_of(diags, "/gamgin/llm")),
            90), node.log()
        rss = lambda: psutil.Process(node.proc.pid).memory_info().rss / 1e6  # noqa: E731
        loaded = rss()
        assert state() == "active"
        assert change(probe, "/gamgin/llm", Transition.TRANSITION_DEACTIVATE)
        assert change(probe, "/gamgin/llm", Transition.TRANSITION_CLEANUP)
        assert state() == "unconfigured"
        assert testing.wait_for(lambda: rss() < loaded - 40, 10), (loaded, rss())
        unloaded = rss()
        assert testing.wait_for(lambda: any(
            "unloaded" in s.message for s in probe.diagnostics_of(diags, "/gamgin/llm")), 10)
        assert change(probe, "/gamgin/llm", Transition.TRANSITION_CONFIGURE)
        assert change(probe, "/gamgin/llm", Transition.TRANSITION_ACTIVATE)
        assert state() == "active" and rss() > unloaded + 40
        assert node.alive()
