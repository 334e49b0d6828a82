"""The devices fast path for the dialogue node (gamgin_llm), plugged in by dotted name:
``fast_paths: ["gamgin_devices.fastpath:DeviceFastPath", ...]`` in config/llm.yaml.

It turns an ``IntentAnswer`` into gamgin_llm's ``FastAnswer`` whose actions are calls of
the dialogue node's tools (set_power, set_param, play_music, stop_music), so the device
services are called by the node that owns the turn. A sentence with more than a device
command in it ("turn off the fan and tell me a joke") comes back with the rest of the
sentence as ``FastAnswer.rest``: the dialogue answers that part with its other paths. The
robot's room is the context's ``robot_room`` (topic robot/room) once the node heard one,
else ``robot_room`` in config/devices.yaml. Pure Python, no rclpy.
"""

from __future__ import annotations

from typing import Any

from gamgin_devices.intents import DeviceIntents, IntentAnswer
from gamgin_llm.chat import ToolCall
from gamgin_llm.router import FastAnswer


class DeviceFastPath:
    def __init__(self, context: Any = None, registry_file: str = "") -> None:
        self.context = context  # gamgin_llm.router.HandlerContext: tools, devices seen, room
        self.intents = DeviceIntents(registry_file or None)
        self._room_heard: str | None = None

    def handle(self, text: str, lang: str) -> FastAnswer | None:
        room = getattr(self.context, "robot_room", None)
        if room is not None and room != self._room_heard:  # robot/room said where we are
            self._room_heard = room
            self.intents.set_robot_room(room)
        answer = self.intents.handle(text, lang, state=self.state())
        if answer is None:
            return None
        actions = self.tool_calls(answer)
        if actions is None:
            return None  # something our tools cannot express: let the LLM (and its tools) try
        return FastAnswer(text=answer.speech, actions=actions, route="intent", rest=answer.rest)

    def state(self) -> dict[str, dict[str, float]] | None:
        """Current parameter values from the context's devices (as devices/state reported
        them), so "调高两度" becomes an absolute set_param. None when values are unknown."""
        devices = getattr(self.context, "devices", None) or {}
        state: dict[str, dict[str, float]] = {}
        for dev_id, info in devices.items():
            values = info.get("values")
            if values is None and info.get("params") and isinstance(info["params"][0], dict):
                values = {p["name"]: p["value"] for p in info["params"]}
            if values:
                state[dev_id] = {k: float(v) for k, v in values.items()}
                if "on" in info:
                    state[dev_id]["on"] = float(bool(info["on"]))
        return state or None

    def tool_calls(self, answer: IntentAnswer) -> list[ToolCall] | None:
        tools = set(getattr(self.context, "tools", None) or ())
        calls: list[ToolCall] = []
        for a in answer.actions:
            if a.kind == "power":
                calls.append(ToolCall("set_power", {"device_id": a.device_id, "on": bool(a.on)}))
            elif a.kind == "param":
                if a.value is None:  # relative, and no current value known
                    return None
                calls.append(ToolCall("set_param", {"device_id": a.device_id, "name": a.param,
                                                    "value": a.value}))
            elif a.kind == "music":
                if a.command == "play":
                    calls.append(ToolCall("play_music", {"query": a.query}))
                elif a.command == "stop":
                    calls.append(ToolCall("stop_music", {}))
                elif "music_control" in tools:
                    calls.append(ToolCall("music_control", {"action": a.command}))
                else:
                    return None
        return calls
