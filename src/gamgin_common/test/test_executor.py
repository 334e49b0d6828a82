"""SteadyExecutor under a 200/s topic: callbacks all run, once each, and the executor
thread does not spin a core while the topic flows (the rclpy < 10.0.4 bug it works round)."""

import threading
import time

import psutil
import rclpy
from rclpy.node import Node
from std_msgs.msg import UInt32

from gamgin_common import qos
from gamgin_common.executor import SteadyExecutor
from gamgin_common.testing import unique_domain_id, wait_for


def test_every_message_is_handled_once_without_spinning_a_core():
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=unique_domain_id())
    node = Node("steady_executor_test", context=ctx)
    got: list[int] = []
    lock = threading.Lock()

    def on_msg(m: UInt32) -> None:
        time.sleep(0.001)  # a little work, as a real callback does
        with lock:
            got.append(m.data)

    node.create_subscription(UInt32, "ticks", on_msg, qos.MIC_AUDIO)
    pub = node.create_publisher(UInt32, "ticks", qos.MIC_AUDIO)
    ex = SteadyExecutor(num_threads=2, context=ctx)
    ex.add_node(node)
    spinner = threading.Thread(target=ex.spin, daemon=True)
    spinner.start()
    try:
        assert wait_for(lambda: pub.get_subscription_count() > 0, 5)
        me = psutil.Process()
        cpu0, t0 = me.cpu_times(), time.monotonic()
        for i in range(600):  # 3 s at 200/s
            pub.publish(UInt32(data=i))
            time.sleep(0.005)
        assert wait_for(lambda: len(got) >= 600, 10), len(got)
        cpu1, wall = me.cpu_times(), time.monotonic() - t0
        used = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / wall
        assert sorted(got) == list(range(600))  # each once, none lost
        assert used < 0.6, f"{used:.0%} of a core for 200 msg/s"
    finally:
        ex.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)
