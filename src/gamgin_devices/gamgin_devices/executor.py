"""Carry out an IntentAnswer against a DeviceController (in the devices node, or in-process
anywhere else). Pure Python, no ROS."""

from __future__ import annotations

from collections.abc import Callable

from gamgin_devices.core import DeviceController
from gamgin_devices.intents import DeviceIntents, IntentAnswer

MusicSink = Callable[[str, str], None]  # (command, query)


def execute(answer: IntentAnswer, controller: DeviceController, intents: DeviceIntents,
            music: MusicSink | None = None, origin: str = "voice") -> str:
    """Perform the answer's actions; returns what to say (the answer's speech, or why not)."""
    for a in answer.actions:
        if a.kind == "power":
            out = controller.set_power(a.device_id, bool(a.on), origin=origin)
        elif a.kind == "param":
            spec = controller.registry.get(a.device_id).param(a.param)
            current = controller.status(a.device_id).params.get(a.param, spec.default)
            out = controller.set_param(a.device_id, a.param,
                                       a.resolve(current, spec.min, spec.max), origin=origin)
        elif a.kind == "music":
            if music is None:  # no player running: say so instead of a false "OK"
                return intents.words[answer.language]["music_unavailable"]
            music(a.command, a.query)
            continue
        else:
            continue
        if not out.success:
            return intents.words[answer.language]["failed"].format(reason=out.message)
    return answer.speech
