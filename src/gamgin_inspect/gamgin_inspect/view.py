"""What a viewer shows that the raw topics do not say well. Pure Python, no ROS.

The bridge publishes these derived topics next to the graph's own, for Foxglove and
Lichtblick panels: the turn state by name (panels show a uint8 state as 0/1/4, since
TurnState's constants do not sit right above its field), and every device in one latched
list (devices/state carries one device per message: a panel shows only the last).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# TurnState's constants, by value (gamgin_interfaces/msg/TurnState)
TURN_STATES = {0: "IDLE", 1: "LISTENING", 2: "THINKING", 3: "SPEAKING", 4: "CANCELLED"}
# the speaker's audio/playback reuses TurnState: SPEAKING = started, IDLE = finished
PLAYBACK_STATES = {0: "FINISHED", 3: "PLAYING", 4: "FLUSHED"}


def turn_state_name(state: int) -> str:
    return TURN_STATES.get(state, f"UNKNOWN ({state})")


def playback_state_name(state: int) -> str:
    return PLAYBACK_STATES.get(state, f"UNKNOWN ({state})")


def _number(value: float) -> str:
    return f"{value:g}"


@dataclass
class DeviceView:
    """One device as a person reads it: "客厅灯 living room light" → "on · brightness 30 %"."""
    device_id: str
    label: str
    room: str
    on: bool
    params: list[tuple[str, float, str]] = field(default_factory=list)  # name, value, unit

    def summary(self) -> str:
        parts = ["on" if self.on else "off"]
        parts += [f"{name} {_number(value)}{(' ' + unit) if unit else ''}"
                  for name, value, unit in self.params]
        return " · ".join(parts)


class DeviceBoard:
    """Every device's latest state, in a stable order (first seen first)."""

    def __init__(self) -> None:
        self._devices: dict[str, DeviceView] = {}

    def update(self, view: DeviceView) -> bool:
        """True when what a viewer sees changed."""
        old = self._devices.get(view.device_id)
        self._devices[view.device_id] = view
        return old is None or old.summary() != view.summary() or old.label != view.label

    def rows(self) -> list[tuple[str, str]]:
        return [(d.label, d.summary()) for d in self._devices.values()]

    def headline(self) -> str:
        on = sum(d.on for d in self._devices.values())
        return f"{on} of {len(self._devices)} devices on"
