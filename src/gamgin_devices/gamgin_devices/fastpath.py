"""The devices fast path for the dialogue node (gamgin_llm), plugged in by dotted name:
``fast_paths: ["gamgin_devices.fastpath:DeviceFastPath", ...]`` in config/llm.yaml.

It turns an ``IntentAnswer`` into gamgin_llm's ``FastAnswer`` whose actions are calls of
the dialogue node's tools (set_power, set_param, play_music, stop_music), so the device
services are called by the node that owns the turn. Pure Python, no rclpy.
"""

from __future__ import annotations

from typing import Any

from gamgin_devices.intents import DeviceIntents, IntentAnswer
from gamgin_llm.chat import ToolCall
from gamgin_llm.router import FastAnswer


class DeviceFastPath:
    def __init__(self, context: Any = None, registry_file: str = "") -> None:
        self.context = context  # gamgin_llm.router.HandlerContext: tools, devices seen
        self.intents = DeviceIntents(registry_file or None)

    def handle(self, text: str, lang: str) -> FastAnswer | None:
        answer = self.intents.handle(text, lang, state=self.state())
        if answer is None or answer.rest:
            return None  # more than a device command in it: the dialogue takes it whole
        actions = self.tool_calls(answer)
        if actions is None:
            return None  # something our tools cannot express: let the LLM (and its tools) try
        return FastAnswer(text=answer.speech, actions=actions, route="intent")

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
