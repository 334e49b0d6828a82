"""Fixtures shared by every package's tests.

Each test module gets its own ROS_DOMAIN_ID, so nodes and latched states of one module
never reach the next, and parallel runs on one machine, or a graph left running by hand,
never see each other's messages. ($ROS_DOMAIN_ID of the test process itself is set once
per run, before rclpy starts, for code that reads it from the environment.)
"""

import os

import pytest

from gamgin_common import testing

_DOMAIN = int(os.environ.get("GAMGIN_TEST_DOMAIN", "0")) or testing.unique_domain_id()
os.environ.update(testing.test_env(_DOMAIN))


@pytest.fixture(scope="module")
def ros_domain() -> int:
    return testing.unique_domain_id()


@pytest.fixture(scope="module")
def node_env(ros_domain) -> dict:
    """Environment for node processes started by tests of this module."""
    return testing.test_env(ros_domain)


@pytest.fixture(scope="module")
def probe(ros_domain):
    p = testing.RosProbe(domain_id=ros_domain)
    yield p
    p.close()


@pytest.fixture(scope="session")
def pulse():
    testing.ensure_pulse()
    return True
