"""The graph is closed to the home network by default.

A second host is made with a network namespace and a veth pair (addresses that exist
only inside this machine). A process there publishes a Transcript -- what an attacker on
the LAN would do to switch the appliances. A subscriber configured like the graph
(LOCALHOST) must receive nothing, while a subscriber opened with --lan (SUBNET) does,
which proves the message really crossed the wire and the test can fail.
"""

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from gamgin_common import testing

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip"),
                       reason="needs root and iproute2"),
]

PUBLISHER = textwrap.dedent("""
    import time, rclpy
    from gamgin_interfaces.msg import Transcript
    rclpy.init()
    node = rclpy.create_node("lan_intruder")
    pub = node.create_publisher(Transcript, "/gamgin/transcript", 10)
    end = time.monotonic() + float(__import__("sys").argv[1])
    while time.monotonic() < end:
        pub.publish(Transcript(turn_id=99, text="把客厅的灯打开", is_final=True))
        time.sleep(0.1)
""")

LISTENER = textwrap.dedent("""
    import sys, time, rclpy
    from gamgin_interfaces.msg import Transcript
    rclpy.init()
    node = rclpy.create_node("listener")
    got = []
    node.create_subscription(Transcript, "/gamgin/transcript", got.append, 10)
    end = time.monotonic() + float(sys.argv[1])
    while time.monotonic() < end and not got:
        rclpy.spin_once(node, timeout_sec=0.1)
    print("RECEIVED" if got else "NOTHING", flush=True)
""")


@pytest.fixture
def second_host():
    with testing.second_host() as (ns, _, _):
        yield ns


def listen(env: dict, seconds: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", LISTENER, str(seconds)], env=env,
                            stdout=subprocess.PIPE, text=True)


def test_a_transcript_from_another_host_does_not_reach_the_graph(second_host, node_env):
    intruder_env = dict(node_env, ROS_AUTOMATIC_DISCOVERY_RANGE="SUBNET")
    closed = listen(dict(node_env, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST"), 12)
    opened = listen(intruder_env, 12)
    intruder = subprocess.Popen(["ip", "netns", "exec", second_host, sys.executable, "-c",
                                 PUBLISHER, "12"], env=intruder_env)
    try:
        assert opened.communicate(timeout=40)[0].strip() == "RECEIVED", "control: LAN path works"
        assert closed.communicate(timeout=40)[0].strip() == "NOTHING"
    finally:
        intruder.kill()
        intruder.wait()
