"""builtin_interfaces/Time <-> integer nanoseconds of the wall clock (what headers carry).

Duck-typed on ``.sec``/``.nanosec`` so pure cores can use it without importing ROS."""

from __future__ import annotations


def ns_of(t) -> int:
    return t.sec * 1_000_000_000 + t.nanosec


def time_msg(ns: int):
    from builtin_interfaces.msg import Time

    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)
