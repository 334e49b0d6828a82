"""Fixtures: a ROS context in the test process on a domain unique to this run, a probe node
that plays the rest of the graph (publishes transcripts and turn states, records tokens)."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import defaultdict
from pathlib import Path

import pytest
from rclpy.node import Node
from std_srvs.srv import Trigger

from gamgin_common import qos
from gamgin_common.testing import test_env, wait_for
from gamgin_interfaces.msg import DeviceState, TokenChunk, Transcript, TurnState
from gamgin_llm.testing import MODEL, LlamaServer

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def env(ros_domain: int) -> dict[str, str]:
    return test_env(ros_domain)


@pytest.fixture(scope="session")
def model_path() -> Path:
    if not MODEL.exists():
        pytest.skip(f"packaged model missing: {MODEL} (run scripts/setup)")
    return MODEL


@pytest.fixture(scope="module")
def backend(model_path):
    """The packaged model, loaded once per test module (real inference, 2 threads)."""
    from gamgin_llm.backends import make_backend

    b = make_backend("llama_cpp", model_path=model_path, n_ctx=2048, n_threads=2)
    b.load()
    yield b
    b.close()


@pytest.fixture(scope="session")
def test_dir() -> Path:
    return HERE


@pytest.fixture(scope="module")
def probe(ros_domain: int):
    """Own rclpy context: other packages' tests in the same pytest run may have theirs."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=ros_domain)
    node = Probe(ctx)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    t = threading.Thread(target=ex.spin, daemon=True)
    t.start()
    yield node
    ex.shutdown()
    node.destroy_node()
    rclpy.try_shutdown(context=ctx)


@pytest.fixture(scope="module")
def devices(env, test_dir):
    """The test-only devices service server (test/devices_server.py) in its own process."""
    proc = subprocess.Popen([sys.executable, str(test_dir / "devices_server.py")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    yield proc
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def new_server(model_path):
    """Start another server (for a test that stops it); stopped at the end in any case."""
    started: list[LlamaServer] = []

    def start(*extra_args: str) -> LlamaServer:
        started.append(LlamaServer(*extra_args).start())
        return started[-1]

    yield start
    for s in started:
        s.stop()


@pytest.fixture(scope="module")
def llama_server(model_path):
    srv = LlamaServer().start()
    yield srv
    srv.stop()




class Probe(Node):
    def __init__(self, context) -> None:
        super().__init__("llm_test_probe", namespace="/gamgin", context=context)
        self.transcript_pub = self.create_publisher(Transcript, "transcript", qos.EVENTS)
        self.state_pub = self.create_publisher(TurnState, "turn/state", qos.STATE)
        self.tokens: dict[int, list[TokenChunk]] = defaultdict(list)
        self.replies: dict[int, TokenChunk] = {}
        self.device_states: list[DeviceState] = []
        self._lock = threading.Lock()
        self.create_subscription(TokenChunk, "tokens", self._on_token, qos.TOKENS)
        self.create_subscription(TokenChunk, "reply", self._on_reply, qos.EVENTS)
        self.create_subscription(DeviceState, "devices/state", self.device_states.append,
                                 qos.DEVICE_STATE)
        self.reset_client = self.create_client(Trigger, "llm/reset")

    def _on_token(self, msg: TokenChunk) -> None:
        with self._lock:
            self.tokens[msg.turn_id].append(msg)

    def _on_reply(self, msg: TokenChunk) -> None:
        with self._lock:
            self.replies[msg.turn_id] = msg

    def say(self, turn_id: int, text: str, language: str = "") -> None:
        msg = Transcript(turn_id=turn_id, text=text, language=language, is_final=True,
                         confidence=1.0, source="typed")
        msg.header.stamp = self.get_clock().now().to_msg()
        self.transcript_pub.publish(msg)

    def cancel(self, turn_id: int) -> None:
        msg = TurnState(turn_id=turn_id, state=TurnState.CANCELLED, reason="test barge-in")
        msg.header.stamp = self.get_clock().now().to_msg()
        self.state_pub.publish(msg)

    def final(self, turn_id: int) -> TokenChunk | None:
        with self._lock:
            return next((c for c in self.tokens[turn_id] if c.is_final), None)

    def wait_final(self, turn_id: int, timeout: float) -> TokenChunk | None:
        wait_for(lambda: self.final(turn_id) is not None and turn_id in self.replies, timeout)
        return self.final(turn_id)

    def chunks(self, turn_id: int) -> list[TokenChunk]:
        with self._lock:
            return list(self.tokens[turn_id])

    def wait_subscribed(self, timeout: float = 20.0) -> bool:
        """The llm node is up when it subscribes to transcript."""
        return wait_for(lambda: self.transcript_pub.get_subscription_count() > 0, timeout)
