"""Device state and the rules for changing it. Pure Python, no ROS.

Every change goes through ``DeviceController``: validate against the registry, let the
backend make it real, and only then commit it and tell the listeners. A refused or
failed change therefore never alters the state.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

from gamgin_devices.backends import BackendError, DeviceBackend, DeviceStatus
from gamgin_devices.registry import DeviceSpec, Refused, Registry, UnknownDevice, fmt_number

# (device_id, what changed: "power" or a param name, origin: "service" | "voice" | "backend")
ChangeListener = Callable[[str, str, str], None]


@dataclass(frozen=True)
class Outcome:
    """What a service call returns: success, a message a person can read, applied value."""

    success: bool
    message: str
    value: float = 0.0


class DeviceController:
    def __init__(self, registry: Registry, backend: DeviceBackend) -> None:
        self.registry, self.backend = registry, backend
        self._lock = threading.RLock()  # guards _states; held only briefly
        self._command_lock = threading.Lock()
        self._states = {d.id: DeviceStatus(False, {p.name: p.default for p in d.params.values()})
                        for d in registry.devices.values()}
        self._listeners: list[ChangeListener] = []
        self.refused = 0
        self.failed = 0

    def start(self) -> str:
        """Open the backend and take over the state it knows; returns a warning or ""."""
        known = self.backend.start(self.registry, self._on_external)
        with self._lock:
            for dev_id, st in known.items():
                if dev_id in self._states:  # a device removed from the registry is dropped
                    self._merge(dev_id, st.to_dict())
        return getattr(self.backend, "warning", "")

    def close(self) -> None:
        self.backend.close()

    def add_listener(self, fn: ChangeListener) -> None:
        self._listeners.append(fn)

    # ------------------------------------------------------------------ queries
    def devices(self, room: str = "") -> list[tuple[DeviceSpec, DeviceStatus]]:
        with self._lock:
            return [(d, self._states[d.id].copy()) for d in self.registry.devices.values()
                    if not room or d.room == room]

    def status(self, device_id: str) -> DeviceStatus:
        with self._lock:
            self.registry.get(device_id)
            return self._states[device_id].copy()

    def values(self) -> dict[str, dict[str, float]]:
        """{device_id: {param: value, "on": 1.0|0.0}}: the ``state`` DeviceIntents reads."""
        with self._lock:
            return {k: {**s.params, "on": float(s.on)} for k, s in self._states.items()}

    # ------------------------------------------------------------------ commands
    def set_power(self, device_id: str, on: bool, origin: str = "service") -> Outcome:
        try:
            dev = self.registry.get(device_id)
        except UnknownDevice as exc:
            return self._refuse(str(exc))
        err = self._commit(dev.id, {"on": bool(on)}, "power", origin)
        if err:
            return err
        return Outcome(True, f"{dev.id} switched {'on' if on else 'off'}", 1.0 if on else 0.0)

    def set_param(self, device_id: str, name: str, value: float,
                  origin: str = "service") -> Outcome:
        try:
            dev = self.registry.get(device_id)
            applied = dev.param(name).check(value)
        except (UnknownDevice, Refused) as exc:
            return self._refuse(str(exc))
        err = self._commit(dev.id, {"params": {name: applied}}, name, origin)
        if err:
            return err
        unit = dev.params[name].unit
        note = "" if applied == float(value) else f" (asked {fmt_number(float(value))})"
        return Outcome(True, f"{dev.id} {name} set to {fmt_number(applied)}{unit}{note}", applied)

    # ------------------------------------------------------------------ internals
    def _refuse(self, message: str) -> Outcome:
        self.refused += 1
        return Outcome(False, message)

    def _commit(self, device_id: str, change: dict, what: str, origin: str) -> Outcome | None:
        # Commands run one at a time (_command_lock), but the state lock is not held while
        # the backend works: an MQTT report arriving meanwhile (on paho's network thread,
        # which also delivers our PUBACK) must not wait for us, or both would stall.
        with self._command_lock:
            with self._lock:
                after = {k: s.copy() for k, s in self._states.items()}
                _apply_change(after[device_id], change)
            try:
                self.backend.apply(device_id, after[device_id], change, after)
            except BackendError as exc:
                self.failed += 1
                return Outcome(False, f"{device_id}: {exc}")
            if not getattr(self.backend, "optimistic", True):
                return None  # the device's own report will change the state
            with self._lock:
                _apply_change(self._states[device_id], change)  # onto the latest state
            self._notify(device_id, what, origin)
        return None

    def _on_external(self, device_id: str, change: dict) -> None:
        with self._lock:
            if device_id not in self._states:
                return
            what = self._merge(device_id, change)
        if what:
            self._notify(device_id, what, "backend")

    def _merge(self, device_id: str, change: dict) -> str:
        """Apply a backend-reported state, keeping values inside the registry's ranges."""
        dev, st = self.registry.devices[device_id], self._states[device_id]
        changed: list[str] = []
        if "on" in change and bool(change["on"]) != st.on:
            st.on = bool(change["on"])
            changed.append("power")
        for name, v in (change.get("params") or {}).items():
            spec = dev.params.get(name)
            if spec is None or not math.isfinite(float(v)):
                continue
            v = min(max(float(v), spec.min), spec.max)  # a device's report is a fact: clamp
            if v != st.params.get(name):
                st.params[name] = v
                changed.append(name)
        return ",".join(changed)

    def _notify(self, device_id: str, what: str, origin: str) -> None:
        for fn in self._listeners:
            fn(device_id, what, origin)


def _apply_change(st: DeviceStatus, change: dict) -> None:
    if "on" in change:
        st.on = bool(change["on"])
    st.params.update(change.get("params", {}))
