"""MQTT devices (paho-mqtt): a change is published as JSON to the device's command topic
(QoS 1, waits for the broker's PUBACK); whatever the device reports on its state topic
(JSON, usually retained) updates our state. Payloads follow the Zigbee2MQTT/Tasmota
habit: {"state": "ON"|"OFF", "<param>": value, ...}.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping

import paho.mqtt.client as mqtt

from gamgin_devices.backends import BackendError, DeviceStatus, ExternalChange
from gamgin_devices.registry import Registry


def encode_change(change: dict) -> bytes:
    """{"on": True, "params": {"brightness": 30}} -> b'{"state": "ON", "brightness": 30}'."""
    out: dict = {}
    if "on" in change:
        out["state"] = "ON" if change["on"] else "OFF"
    out.update(change.get("params", {}))
    return json.dumps(out).encode()


def decode_state(payload: bytes, param_names: set[str]) -> dict:
    """A device's JSON state -> partial state; raises ValueError on a bad payload."""
    data = json.loads(payload.decode("utf-8"))
    if not isinstance(data, dict):
        raise ValueError("state payload must be a JSON object")
    out: dict = {}
    state = data.get("state", data.get("on"))
    if isinstance(state, str):
        if state.upper() not in ("ON", "OFF"):
            raise ValueError(f"state must be ON or OFF, got {state!r}")
        out["on"] = state.upper() == "ON"
    elif isinstance(state, bool):
        out["on"] = state
    params = {k: float(v) for k, v in data.items() if k in param_names}
    if params:
        out["params"] = params
    return out


class MqttBackend:
    name = "mqtt"

    def __init__(self, host: str = "127.0.0.1", port: int = 1883, client_id: str = "",
                 timeout_s: float = 3.0, optimistic: bool = True) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s
        # optimistic: a PUBACK counts as applied (most devices never echo a command)
        self.optimistic = optimistic
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=client_id or f"gamgin-devices-{os.getpid()}")
        self._connected = threading.Event()
        self._by_state_topic: dict[str, tuple[str, set[str]]] = {}
        self._registry: Registry | None = None
        self._on_external: ExternalChange | None = None
        self.warning = ""
        self.bad_payloads = 0

    def start(self, registry: Registry, on_external: ExternalChange) -> dict[str, DeviceStatus]:
        self._registry, self._on_external = registry, on_external
        self._by_state_topic = {d.state_topic: (d.id, set(d.params))
                                for d in registry.devices.values()}
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *a, **k: self._connected.clear()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 10)
        try:
            self.client.connect(self.host, self.port, keepalive=30)
        except OSError as exc:
            raise BackendError(f"cannot reach MQTT broker {self.host}:{self.port}: {exc} "
                               "(start mosquitto or set mqtt_host/mqtt_port)") from None
        self.client.loop_start()
        if not self._connected.wait(self.timeout_s):
            self.close()
            raise BackendError(f"MQTT broker {self.host}:{self.port} did not accept the "
                               f"connection within {self.timeout_s:.0f} s")
        # retained states arrive through on_message -> on_external; nothing known yet here
        return {}

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.warning = f"MQTT connect refused: {reason_code}"
            return
        for topic in self._by_state_topic:  # (re)subscribe after every reconnect
            client.subscribe(topic, qos=1)
        self._connected.set()

    def _on_message(self, client, userdata, msg) -> None:
        entry = self._by_state_topic.get(msg.topic)
        if entry is None or self._on_external is None:
            return
        device_id, names = entry
        try:
            change = decode_state(msg.payload, names)
        except (ValueError, UnicodeDecodeError) as exc:
            self.bad_payloads += 1
            self.warning = f"bad state payload on {msg.topic}: {exc}"
            return
        if change:
            self._on_external(device_id, change)

    def apply(self, device_id: str, new: DeviceStatus, change: dict,
              states: Mapping[str, DeviceStatus]) -> None:
        if self._registry is None:
            raise BackendError("MQTT backend not started")
        if not self._connected.is_set():
            raise BackendError(f"not connected to MQTT broker {self.host}:{self.port}")
        topic = self._registry.get(device_id).command_topic
        info = self.client.publish(topic, encode_change(change), qos=1)
        try:
            info.wait_for_publish(self.timeout_s)
        except (RuntimeError, ValueError) as exc:
            raise BackendError(f"MQTT publish to {topic} failed: {exc}") from None
        if not info.is_published():
            raise BackendError(f"MQTT broker did not acknowledge {topic} within "
                               f"{self.timeout_s:.0f} s")

    def close(self) -> None:
        self.client.loop_stop()
        try:
            self.client.disconnect()
        except Exception:
            pass
