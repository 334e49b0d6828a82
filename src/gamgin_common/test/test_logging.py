"""rclpy's deprecated ``Logger.warn`` crashed the speaker in a CI rehearsal.

``warn`` is wrapped by ``typing_extensions.deprecated``; rclpy identifies a log call site by
the first frame outside rclpy, which is then that wrapper, the same for every ``warn`` in the
process. Two ``warn`` sites with different filters (an ALSA message without throttle, a
rejected chunk with ``throttle_duration_sec``) then raise "Requested logging filters cannot
be changed between calls" in the second one's callback. ``warning`` has no wrapper."""

import re
from pathlib import Path

import pytest
import rclpy

SRC = Path(__file__).resolve().parents[2]


@pytest.fixture()
def logger():
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node("log_probe", context=ctx)
    yield node.get_logger()
    node.destroy_node()
    rclpy.try_shutdown(context=ctx)


def plain(logger, text: str) -> None:
    logger.warning(text)


def throttled(logger, text: str) -> None:
    logger.warning(text, throttle_duration_sec=1.0)


def test_warning_sites_with_different_filters_coexist(logger):
    plain(logger, "an ALSA line")
    throttled(logger, "a rejected chunk")
    throttled(logger, "a rejected chunk again")  # throttled, not an error


def test_rclpy_warn_alias_still_confuses_call_sites(logger):
    """The reason for the rule below; if rclpy fixes it, this test says so."""
    if not hasattr(logger, "warn"):
        pytest.skip("rclpy has no warn alias any more")
    logger.warn("one site")
    with pytest.raises(ValueError, match="filters cannot be changed"):
        logger.warn("another site", throttle_duration_sec=1.0)


def test_no_node_logs_through_the_warn_alias():
    offenders = [f"{p.relative_to(SRC)}:{i}" for p in SRC.glob("*/gamgin*/**/*.py")
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                 if re.search(r"get_logger\(\)\.warn\(", line)]
    assert not offenders, f"use .warning(): {offenders}"
