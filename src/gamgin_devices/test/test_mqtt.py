"""MQTT backend against a real Mosquitto broker on loopback."""

from __future__ import annotations

import json
import queue
import socket

import paho.mqtt.client as mqtt
import pytest

from gamgin_common.testing import wait_for
from gamgin_devices.backends import BackendError
from gamgin_devices.backends.mqtt import MqttBackend, decode_state, encode_change
from gamgin_devices.core import DeviceController
from gamgin_devices.registry import load_registry


def listener(host: str, port: int, topic: str) -> tuple[mqtt.Client, queue.Queue]:
    got: queue.Queue = queue.Queue()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.on_message = lambda cl, u, m: got.put((m.topic, json.loads(m.payload)))
    c.connect(host, port)
    c.subscribe(topic, qos=1)
    c.loop_start()
    return c, got


def test_payload_codec():
    assert json.loads(encode_change({"on": True})) == {"state": "ON"}
    assert json.loads(encode_change({"params": {"brightness": 30.0}})) == {"brightness": 30.0}
    assert decode_state(b'{"state": "off", "brightness": 12, "color": "red"}',
                        {"brightness"}) == {"on": False, "params": {"brightness": 12.0}}
    for bad in (b"[1]", b"{nope", b'{"state": "maybe"}'):
        with pytest.raises(ValueError):
            decode_state(bad, set())


def test_round_trip_through_broker(mosquitto):
    host, port = mosquitto.host, mosquitto.port
    registry = load_registry()
    sub, got = listener(host, port, "gamgin/devices/+/set")
    ctl = DeviceController(registry, MqttBackend(host, port, timeout_s=3))
    heard = []
    ctl.add_listener(lambda *a: heard.append(a))
    try:
        ctl.start()
        assert ctl.set_power("living_room_light", True).success
        assert got.get(timeout=5) == ("gamgin/devices/living_room_light/set", {"state": "ON"})
        assert ctl.set_param("bedroom_ac", "temperature", 22).success
        assert got.get(timeout=5) == ("gamgin/devices/bedroom_ac/set", {"temperature": 22.0})
        # refused calls never reach the broker
        assert not ctl.set_param("bedroom_ac", "temperature", 50).success
        # the device reports a change of its own (wall switch): state follows
        sub.publish("gamgin/devices/fan/state", json.dumps({"state": "ON", "speed": 3}),
                    qos=1, retain=True).wait_for_publish(3)
        assert wait_for(lambda: ctl.status("fan").on and ctl.status("fan").params["speed"] == 3,
                        5)
        assert ("fan", "power,speed", "backend") in heard
        # garbage on a state topic is counted, not applied
        sub.publish("gamgin/devices/tv/state", b"{broken", qos=1).wait_for_publish(3)
        assert wait_for(lambda: ctl.backend.bad_payloads == 1, 5)
        assert ctl.status("tv").on is False
    finally:
        ctl.close()
    # a restarted controller learns the retained state from the broker
    again = DeviceController(registry, MqttBackend(host, port))
    try:
        again.start()
        assert wait_for(lambda: again.status("fan").params["speed"] == 3, 5)
    finally:
        again.close()
        sub.loop_stop()


def test_broker_gone_refuses_and_keeps_state(mosquitto):
    host, port = mosquitto.host, mosquitto.port
    ctl = DeviceController(load_registry(), MqttBackend(host, port, timeout_s=1))
    ctl.start()
    try:
        # stop the broker under the backend
        mosquitto.proc.terminate()
        mosquitto.proc.wait(5)
        assert wait_for(lambda: not ctl.backend._connected.is_set(), 5)
        res = ctl.set_power("tv", True)
        assert not res.success and "MQTT" in res.message
        assert ctl.status("tv").on is False
    finally:
        ctl.close()


def test_no_broker_is_a_clear_error():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend = MqttBackend("127.0.0.1", port, timeout_s=1)
    with pytest.raises(BackendError, match="mosquitto"):
        backend.start(load_registry(), lambda *a: None)


def test_pessimistic_mode_waits_for_the_device(mosquitto):
    host, port = mosquitto.host, mosquitto.port
    sub, got = listener(host, port, "gamgin/devices/+/set")
    ctl = DeviceController(load_registry(), MqttBackend(host, port, optimistic=False))
    try:
        ctl.start()
        assert ctl.set_power("fan", True).success
        assert got.get(timeout=5)[0] == "gamgin/devices/fan/set"
        assert ctl.status("fan").on is False  # not until the device says so
        sub.publish("gamgin/devices/fan/state", b'{"state": "ON"}', qos=1).wait_for_publish(3)
        assert wait_for(lambda: ctl.status("fan").on, 5)
    finally:
        ctl.close()
        sub.loop_stop()
