"""Where device state goes: one small Protocol, one file per backend.

- ``simulated``: state kept in a JSON file (atomic replace), survives restarts;
- ``mqtt``: commands published to per-device MQTT topics, states read back from them.
A Home Assistant REST backend would implement the same three methods.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from gamgin_devices.registry import Registry


class BackendError(RuntimeError):
    """The backend could not apply a change (broker down, disk full); state is unchanged."""


@dataclass
class DeviceStatus:
    """The changing part of a device: power and parameter values."""

    on: bool = False
    params: dict[str, float] = field(default_factory=dict)

    def copy(self) -> DeviceStatus:
        return DeviceStatus(self.on, dict(self.params))

    def to_dict(self) -> dict:
        return {"on": self.on, "params": dict(self.params)}

    @staticmethod
    def from_dict(d: Mapping) -> DeviceStatus:
        return DeviceStatus(bool(d.get("on", False)),
                            {str(k): float(v) for k, v in (d.get("params") or {}).items()})


# Called by a backend when a device changed on its own (e.g. a wall switch via MQTT):
# (device_id, partial state {"on": bool?, "params": {name: value}?}).
ExternalChange = Callable[[str, dict], None]


class DeviceBackend(Protocol):
    name: str

    def start(self, registry: Registry, on_external: ExternalChange) -> dict[str, DeviceStatus]:
        """Connect / open; return the states the backend knows (may be partial)."""

    def apply(self, device_id: str, new: DeviceStatus, change: dict,
              states: Mapping[str, DeviceStatus]) -> None:
        """Make ``change`` real (``new`` is the device after it, ``states`` all devices
        after it). Raise BackendError to refuse: the controller then keeps the old state."""

    def close(self) -> None: ...


def make_backend(name: str, **options) -> DeviceBackend:
    if name == "simulated":
        from gamgin_devices.backends.simulated import SimulatedBackend

        return SimulatedBackend(options.get("state_file", ""))
    if name == "mqtt":
        from gamgin_devices.backends.mqtt import MqttBackend

        return MqttBackend(host=options.get("host", "127.0.0.1"),
                           port=int(options.get("port", 1883)),
                           client_id=options.get("client_id", ""),
                           timeout_s=float(options.get("timeout_s", 3.0)),
                           optimistic=bool(options.get("optimistic", True)))
    raise ValueError(f"unknown device backend {name!r} (use 'simulated' or 'mqtt')")
