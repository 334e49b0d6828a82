"""Choosing a sounddevice (PortAudio) device from a parameter. No ROS.

``device`` is "" (the default device), an index, or a substring of a device name.
``pulse_device`` names a PulseAudio/PipeWire source or sink (e.g. ``robot_mic.monitor``)
routed through PortAudio's ALSA ``pulse`` plugin: libpulse reads PULSE_SOURCE /
PULSE_SINK when the stream connects, so this selects it without changing the
system-wide defaults other programs rely on.
"""

from __future__ import annotations

import os


def select(device: str, pulse_device: str, kind: str) -> int | str | None:
    """Return the value for sounddevice's ``device=`` and set the Pulse routing env."""
    if pulse_device:
        os.environ["PULSE_SOURCE" if kind == "input" else "PULSE_SINK"] = pulse_device
        if not device:
            device = "pulse"
    if device == "":
        return None
    if device.lstrip("-").isdigit():
        return int(device)
    return device


def latency(value: object) -> float | str:
    """sounddevice's ``latency=`` from a parameter: seconds (a number or a string of one),
    or PortAudio's "low" / "high" defaults. ValueError says what is accepted."""
    text = str(value).strip()
    if text in ("low", "high"):
        return text
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 2:
        raise ValueError(f"latency {value!r}: seconds in (0, 2], 'low' or 'high'")
    return seconds


def describe_devices() -> str:
    import sounddevice as sd

    try:
        return "; ".join(
            f"{i}: {d['name']} (in {d['max_input_channels']}, out {d['max_output_channels']})"
            for i, d in enumerate(sd.query_devices())
        ) or "no audio devices"
    except Exception as exc:
        return f"cannot list devices: {exc}"
