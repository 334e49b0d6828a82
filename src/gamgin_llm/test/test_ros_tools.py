"""DeviceTools' service calls over real DDS: a request that gets no answer (lost on Wi-Fi:
DDS would resend it only at the writer's next heartbeat, ~3 s) is asked again after
service_retry_s, and the first answer wins; a server that never answers is a clear error
within service_timeout_s."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import rclpy
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor

from gamgin_interfaces.srv import SetPower
from gamgin_llm.ros_tools import DeviceTools


class SlowFirst:
    """set_power that sits on its first `hold` requests for `delay_s` (their answer comes too
    late: a lost request as far as the caller can tell), then answers at once."""

    def __init__(self, probe, ns: str, hold: int, delay_s: float) -> None:
        # a participant of its own (as the devices node on the robot), threads to spare
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=probe.context.get_domain_id())
        self.node = rclpy.create_node("slow_devices", namespace=ns, context=self.context)
        self.calls, self.hold, self.delay_s = 0, hold, delay_s
        self.lock = threading.Lock()
        self.node.create_service(SetPower, "devices/set_power", self.set_power,
                                 callback_group=ReentrantCallbackGroup())
        self.executor = MultiThreadedExecutor(num_threads=4, context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def set_power(self, req, res):
        with self.lock:
            self.calls += 1
            n = self.calls
        if n <= self.hold:
            time.sleep(self.delay_s)
        res.success, res.message = True, f"{req.device_id} {'on' if req.on else 'off'} ({n})"
        return res

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


@contextmanager
def server_and_tools(probe, ns: str, hold: int, timeout_s: float) -> Iterator[DeviceTools]:
    """A devices server that sits on its first `hold` requests for 3 s, and the LLM node's
    DeviceTools (service_retry_s 0.5) calling it."""
    server = SlowFirst(probe, ns, hold=hold, delay_s=3.0)
    node = rclpy.create_node("llm_tools", namespace=ns, context=probe.context)
    probe.executor.add_node(node)
    tools = DeviceTools(node, timeout_s, retry_s=0.5)
    try:
        yield tools
    finally:
        tools.destroy()
        probe.executor.remove_node(node)
        node.destroy_node()
        server.close()


def test_an_unanswered_request_is_asked_again_and_the_first_answer_wins(probe):
    with server_and_tools(probe, "/retry_a", hold=1, timeout_s=2.0) as tools:
        t0 = time.monotonic()
        res = tools.set_power({"device_id": "tv", "on": True})
        took = time.monotonic() - t0
    assert res["ok"] and res["message"] == "tv on (2)", res
    assert tools.retries == 1 and 0.5 <= took < 1.9, took


def test_a_server_that_never_answers_is_an_error_within_the_timeout(probe):
    with server_and_tools(probe, "/retry_b", hold=2, timeout_s=1.5) as tools:
        t0 = time.monotonic()
        res = tools.set_power({"device_id": "tv", "on": False})
        took = time.monotonic() - t0
    assert not res["ok"] and "did not answer in 1.5 s" in res["message"], res
    assert tools.retries == 1 and 1.4 <= took < 2.5, took
