"""Tools that act through ROS: device services and the music hand-off. ROS wiring only.

Each tool is a plain callable registered in ``ToolRegistry``; every service call has a
timeout, so a missing or stuck devices node gives the model an error result, never a hang.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from std_msgs.msg import String

from gamgin_interfaces.msg import DeviceState
from gamgin_interfaces.srv import ListDevices, SetDeviceParam, SetPower
from gamgin_llm.tools import (
    Tool,
    ToolRegistry,
    ToolResult,
    device_context,
    register_device_tools,
)


class DeviceTools:
    """set_power / set_param / list_devices over devices/* services. The devices seen on
    devices/state become enums in the schemas, so even a tiny model names real devices."""

    def __init__(self, node: Node, timeout_s: float, retry_s: float = 0.0) -> None:
        self.node, self.timeout_s, self.retry_s = node, timeout_s, retry_s
        self.retries = 0  # requests asked again after retry_s without an answer
        group = ReentrantCallbackGroup()  # responses arrive while the worker thread waits
        self.power = node.create_client(SetPower, "devices/set_power", callback_group=group)
        self.param = node.create_client(SetDeviceParam, "devices/set_param",
                                        callback_group=group)
        self.list = node.create_client(ListDevices, "devices/list", callback_group=group)
        self.devices: dict[str, dict[str, Any]] = {}  # id -> names, room, type, params
        self._live: set[str] = set()  # ids confirmed by devices/state in this run
        self._lock = threading.Lock()

    def destroy(self) -> None:
        for c in (self.power, self.param, self.list):
            self.node.destroy_client(c)

    # what the prompt head and the schemas are made of (not the live values)
    _DESCRIBING = ("name_en", "name_zh", "aliases", "room", "type", "params")

    def on_state(self, msg: DeviceState) -> bool:
        """Remember a device; True when the set of devices or how one is described changed
        (the schemas and the prompt head must then be rebuilt)."""
        d = msg.device
        entry = {"name_en": d.name_en, "name_zh": d.name_zh, "aliases": list(d.aliases),
                 "room": d.room, "type": d.type, "on": d.on,
                 "params": [p.name for p in d.params],
                 "values": {p.name: p.value for p in d.params}}
        with self._lock:
            old = self.devices.get(d.id)
            self.devices[d.id] = entry
            self._live.add(d.id)
        return old is None or any(old.get(k) != entry[k] for k in self._DESCRIBING)

    def seed(self, path: Path) -> int:
        """Devices as the last run knew them (``save``), so the first prompt head is the
        one the prefix cache holds, before devices/state arrives (~1 s of discovery).
        Live states replace them; ``drop_unconfirmed`` removes the ones gone since."""
        try:
            data = json.loads(path.read_text())
            seeded = {str(i): {k: v[k] for k in self._DESCRIBING}
                      for i, v in data.items() if isinstance(v, dict)}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return 0  # none yet, or unreadable: the live states will come
        with self._lock:
            for i, v in seeded.items():
                self.devices.setdefault(i, {**v, "on": False, "values": {}})
        return len(seeded)

    def confirmed(self) -> int:
        """How many devices devices/state confirmed in this run."""
        with self._lock:
            return len(self._live)

    def drop_unconfirmed(self) -> bool:
        """Forget seeded devices that no live state confirmed; True if any was dropped."""
        with self._lock:
            gone = [i for i in self.devices if i not in self._live]
            for i in gone:
                del self.devices[i]
        return bool(gone)

    def save(self, path: Path) -> None:
        snap = {i: {k: v[k] for k in self._DESCRIBING} for i, v in self.snapshot().items()}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps(snap, ensure_ascii=False, sort_keys=True))
            os.replace(tmp, path)
        except OSError:
            pass  # a cache: the next start only prefills once more

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """A copy of the devices seen, safe to read while devices/state keeps arriving."""
        with self._lock:
            return {i: dict(v) for i, v in self.devices.items()}

    def context(self) -> str:
        return device_context(self.snapshot())

    def register(self, registry: ToolRegistry) -> None:
        register_device_tools(registry, self.snapshot, self.set_power, self.set_param,
                              self.list_devices)

    # ------------------------------------------------------------------ the tools
    def set_power(self, args: dict[str, Any]) -> ToolResult:
        res = self._call(self.power, SetPower.Request(device_id=args["device_id"],
                                                      on=bool(args["on"])))
        if isinstance(res, dict):
            return res
        return {"ok": res.success, "message": res.message}

    def set_param(self, args: dict[str, Any]) -> ToolResult:
        res = self._call(self.param, SetDeviceParam.Request(
            device_id=args["device_id"], name=args["name"], value=float(args["value"])))
        if isinstance(res, dict):
            return res
        return {"ok": res.success, "message": res.message, "value": res.value}

    def list_devices(self, args: dict[str, Any]) -> ToolResult:
        res = self._call(self.list, ListDevices.Request(room=args.get("room", "")))
        if isinstance(res, dict):
            return res
        devs = [{"id": d.id, "name": d.name_en or d.name_zh, "on": d.on,
                 **{p.name: p.value for p in d.params}} for d in res.devices]
        return {"ok": True, "message": json.dumps(devs, ensure_ascii=False)[:600]}

    def _call(self, client, request) -> Any:
        name = client.srv_name
        if not client.wait_for_service(timeout_sec=min(1.0, self.timeout_s)):
            return {"ok": False, "message": f"service {name} is not available "
                                            "(is the devices node running?)"}
        done = threading.Event()
        futures = []

        def ask() -> None:
            f = client.call_async(request)
            f.add_done_callback(lambda _f: done.set())
            futures.append(f)

        deadline = time.monotonic() + self.timeout_s
        ask()
        # Over a lossy link a lost request or answer is resent by DDS only at the writer's
        # next heartbeat (~3 s, past the timeout): ask again sooner. The calls are idempotent
        # (power on/off, absolute values; relative changes were resolved before the call).
        if 0 < self.retry_s < self.timeout_s and not done.wait(self.retry_s):
            self.retries += 1
            self.node.get_logger().warning(
                f"service {name}: no answer in {self.retry_s:g} s, asking again "
                f"({self.retries} retries so far)")
            ask()
        done.wait(max(0.0, deadline - time.monotonic()))
        future = next((f for f in futures if f.done()), None)
        for f in futures:
            if f is not future:
                client.remove_pending_request(f)
        if future is None:
            return {"ok": False, "message": f"service {name} did not answer in "
                                            f"{self.timeout_s:.1f} s"}
        exc = future.exception()
        if exc is not None:
            return {"ok": False, "message": f"service {name} failed: {exc}"}
        return future.result()


class MusicTools:
    """play_music / stop_music: a JSON command on ``music/command`` (std_msgs/String) for
    whichever node owns music. No listener -> an honest error, not a fake success."""

    def __init__(self, node: Node, topic: str, qos_profile) -> None:
        self.pub = node.create_publisher(String, topic, qos_profile)
        self.node = node

    def destroy(self) -> None:
        self.node.destroy_publisher(self.pub)

    def register(self, registry: ToolRegistry) -> None:
        registry.register(Tool(
            "play_music", "play local music, optionally a song, artist or genre",
            {"type": "object", "additionalProperties": False,
             "properties": {"query": {"type": "string"}}}, self.play, acts="music"))
        registry.register(Tool("stop_music", "stop the music",
                               {"type": "object", "additionalProperties": False,
                                "properties": {}}, self.stop, acts="music"))

    def _send(self, command: dict[str, Any]) -> ToolResult:
        if self.pub.get_subscription_count() == 0:
            return {"ok": False, "message": "no music player is running"}
        self.pub.publish(String(data=json.dumps(command, ensure_ascii=False)))
        return {"ok": True, "message": f"music {command['action']} sent"}

    def play(self, args: dict[str, Any]) -> ToolResult:
        return self._send({"action": "play", "query": args.get("query", "")})

    def stop(self, args: dict[str, Any]) -> ToolResult:
        return self._send({"action": "stop"})
