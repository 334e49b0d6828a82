"""Session fixtures shared by every package's tests.

Each test run gets its own ROS_DOMAIN_ID (set before rclpy starts), so parallel runs on
one machine, or a graph left running by hand, never see each other's messages.
"""

import os

import pytest

from gamgin_common import testing

_DOMAIN = int(os.environ.get("GAMGIN_TEST_DOMAIN", "0")) or testing.unique_domain_id()
os.environ.update(testing.test_env(_DOMAIN))


@pytest.fixture(scope="session")
def ros_domain() -> int:
    return _DOMAIN


@pytest.fixture(scope="session")
def node_env(ros_domain) -> dict:
    """Environment for node processes started by tests."""
    return testing.test_env(ros_domain)


@pytest.fixture(scope="session")
def probe(ros_domain):
    p = testing.RosProbe()
    yield p
    p.close()


@pytest.fixture(scope="session")
def pulse():
    testing.ensure_pulse()
    return True
