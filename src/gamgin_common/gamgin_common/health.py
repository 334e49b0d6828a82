"""A node's health as a person would read it. Pure Python, no ROS.

The ROS side (gamgin_common.stage) turns this into diagnostic_msgs/DiagnosticStatus
on /diagnostics, which rqt_robot_monitor and `gamgin status` read.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

OK, WARN, ERROR, STALE = 0, 1, 2, 3
LEVEL_NAMES = {OK: "OK", WARN: "WARN", ERROR: "ERROR", STALE: "STALE"}


@dataclass
class Health:
    """Level + reason + key values + counters; thread-safe; tracks whether it changed."""

    level: int = WARN
    message: str = "starting"
    values: dict[str, str] = field(default_factory=dict)
    counters: Counter = field(default_factory=Counter)
    _changed: bool = True
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def set(self, level: int, message: str) -> None:
        with self._lock:
            if (level, message) != (self.level, self.message):
                self.level, self.message, self._changed = level, message, True

    def ok(self, message: str = "ready") -> None:
        self.set(OK, message)

    def warn(self, message: str) -> None:
        self.set(WARN, message)

    def error(self, message: str) -> None:
        self.set(ERROR, message)

    def value(self, key: str, val: object, notify: bool = False) -> None:
        """Set a key value; `notify` publishes it at once when it changed (for milestones,
        not for values that change all the time)."""
        with self._lock:
            if notify and self.values.get(key) != str(val):
                self._changed = True
            self.values[key] = str(val)

    def count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counters[key] += n

    def snapshot(self) -> tuple[int, str, dict[str, str]]:
        """(level, message, values incl. counters) and clears the changed flag."""
        with self._lock:
            self._changed = False
            vals = dict(self.values)
            vals.update({k: str(v) for k, v in sorted(self.counters.items())})
            return self.level, self.message, vals

    @property
    def changed(self) -> bool:
        return self._changed
