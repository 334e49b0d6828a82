"""builtin_interfaces/Time <-> integer nanoseconds of the wall clock (what headers carry).

Duck-typed on ``.sec``/``.nanosec`` so pure cores can use it without importing ROS."""

from __future__ import annotations


def ns_of(t) -> int:
    return t.sec * 1_000_000_000 + t.nanosec


def time_msg(ns: int):
    from builtin_interfaces.msg import Time

    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


TURN_EPOCH = 1735689600  # 2025-01-01T00:00:00Z


def clock_turn_id() -> int:
    """A turn id from the clock (deciseconds since 2025, fits uint32 until ~2038), the
    scheme the wake node uses: a turn started later gets a larger id, across restarts."""
    import time

    return int((time.time() - TURN_EPOCH) * 10)
