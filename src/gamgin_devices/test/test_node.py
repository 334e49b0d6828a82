"""devices_node as a real process over real DDS (unique ROS_DOMAIN_ID per run)."""

from __future__ import annotations

import json
import time

import paho.mqtt.client as mqtt
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from std_msgs.msg import String

from gamgin_common import qos
from gamgin_common.testing import NodeProcess, wait_for
from gamgin_interfaces.msg import DeviceState, TokenChunk, Transcript
from gamgin_interfaces.srv import ListDevices, SetDeviceParam, SetPower

NS = "/gamgin"


pytestmark = pytest.mark.integration


class Client:
    """Service calls and topic recorders on the session's RosProbe."""

    def __init__(self, probe) -> None:
        self.probe = probe
        self.states = probe.collect(DeviceState, f"{NS}/devices/state", qos.DEVICE_STATE)
        self.replies = probe.collect(TokenChunk, f"{NS}/devices/reply", qos.TOKENS)
        self._music = probe.collect(String, f"{NS}/music/command", qos.EVENTS)
        self._diags = probe.collect(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
        self.cmd_pub = probe.publisher(Transcript, f"{NS}/devices/command", qos.EVENTS)

    @property
    def music(self) -> list[dict]:
        return [json.loads(m.data) for m in list(self._music)]

    def diags(self) -> list:
        return self.probe.diagnostics_of(self._diags, f"{NS}/devices")

    def call(self, which: str, req, timeout: float = 20.0):
        srv, name = {"list": (ListDevices, "list"), "power": (SetPower, "set_power"),
                     "param": (SetDeviceParam, "set_param")}[which]
        return self.probe.call(srv, f"{NS}/devices/{name}", req, timeout)

    def devices(self) -> dict:
        resp = self.call("list", ListDevices.Request())
        return {d.id: (d.on, {p.name: p.value for p in d.params}) for d in resp.devices}

    def say(self, text: str, lang: str, turn_id: int, source: str = "typed") -> TokenChunk:
        assert self.probe.wait_for_subscribers(self.cmd_pub, timeout=20)
        n = len(self.replies)
        self.cmd_pub.publish(Transcript(text=text, language=lang, turn_id=turn_id,
                                        is_final=True, source=source))
        assert wait_for(lambda: len(self.replies) > n, 10), f"no reply to {text!r}"
        return self.replies[-1]

    def close(self) -> None:
        for c in (self.states, self.replies, self._music, self._diags):
            self.probe.node.destroy_subscription(c.subscription)
        self.probe.node.destroy_publisher(self.cmd_pub)


@pytest.fixture
def client(probe):
    c = Client(probe)
    yield c
    c.close()


def devices_node(env: dict, tmp_path, **params) -> NodeProcess:
    params.setdefault("state_file", str(tmp_path / "devices_state.json"))
    return NodeProcess("gamgin_devices", "devices_node", "devices", env,
                       params=params, log_dir=str(tmp_path))


def test_services_change_state_refuse_and_survive_restart(node_env, client, tmp_path):
    node = devices_node(node_env, tmp_path).start()
    try:
        r = client.call("power", SetPower.Request(device_id="living_room_light", on=True))
        assert r.success, r.message
        r = client.call("param", SetDeviceParam.Request(device_id="bedroom_ac",
                                                        name="temperature", value=23.5))
        assert r.success and r.value == 23.5
        before = client.devices()
        # refused calls: state unchanged, messages say why
        r = client.call("param", SetDeviceParam.Request(device_id="bedroom_ac",
                                                        name="temperature", value=40.0))
        assert not r.success and "out of range" in r.message
        r = client.call("power", SetPower.Request(device_id="living_room_lite", on=False))
        assert not r.success and "living_room_light" in r.message
        r = client.call("param", SetDeviceParam.Request(device_id="fan", name="volume",
                                                        value=2.0))
        assert not r.success and "speed" in r.message
        assert client.devices() == before
        assert before["living_room_light"][0] is True
        assert before["bedroom_ac"][1]["temperature"] == 23.5
        assert wait_for(lambda: any(s.device.id == "bedroom_ac" and s.change == "temperature"
                                    and s.origin == "service" for s in client.states), 5)
        rooms = client.call("list", ListDevices.Request(room="bedroom")).devices
        assert {d.id for d in rooms} == {"bedroom_ac", "bedroom_light"}
    finally:
        assert node.stop() == 0, node.log()
    # a new node process on the same state file: nothing lost
    node = devices_node(node_env, tmp_path).start()
    try:
        after = client.devices()
        assert after == before, node.log()
    finally:
        node.stop()


def test_typed_commands_change_devices_and_answer(node_env, client, tmp_path):
    node = devices_node(node_env, tmp_path).start()
    try:
        assert client.devices()["bedroom_ac"][1]["temperature"] == 26
        r = client.say("金坚，把卧室空调调到二十四度", "zh", 1)
        assert r.route == "intent" and r.is_final and r.turn_id == 1
        assert "24" in r.text and "卧室空调" in r.text
        assert client.devices()["bedroom_ac"][1]["temperature"] == 24
        r = client.say("把空调调高两度", "zh", 2)
        assert "26" in r.text and client.devices()["bedroom_ac"][1]["temperature"] == 26
        r = client.say("Turn on the fan.", "en", 3)
        assert r.text == "OK, fan on." and client.devices()["fan"][0] is True
        assert client.say("风扇开着吗", "zh", 3).text == "风扇开着。"  # answered from state
        assert wait_for(lambda: any(s.device.id == "fan" and s.origin == "voice"
                                    for s in client.states), 5)
        r = client.say("把空调调到四十度", "zh", 4)  # refused in words, nothing changes
        assert "16" in r.text and client.devices()["bedroom_ac"][1]["temperature"] == 26
        r = client.say("what is the weather like", "en", 5)
        assert r.route == "fallback" and r.text == ""
        # safety: text that is not the user's own words never moves a device
        r = client.say("turn off the fan", "en", 7, source="knowledge")
        assert r.route == "error" and client.devices()["fan"][0] is True
        # relative commands in-process, resolved with devices/list state
        from gamgin_devices.intents import DeviceIntents, state_from_devices

        listed = client.call("list", ListDevices.Request()).devices
        ans = DeviceIntents(warm=False).handle("空调调高一点", "zh", state_from_devices(listed))
        assert ans.actions[0].value == 27
        r = client.say("放一首周杰伦的歌", "zh", 6)
        assert wait_for(lambda: client.music == [{"command": "play", "query": "周杰伦"}], 5)
    finally:
        node.stop()


def test_mqtt_backend_through_the_node(node_env, client, tmp_path, mosquitto):
    seen: list = []
    dev = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    dev.on_message = lambda c, u, m: seen.append((m.topic, json.loads(m.payload)))
    dev.connect(mosquitto.host, mosquitto.port)
    dev.subscribe("gamgin/devices/+/set", qos=1)
    dev.loop_start()
    node = devices_node(node_env, tmp_path, backend="mqtt", mqtt_port=mosquitto.port).start()
    try:
        r = client.call("power", SetPower.Request(device_id="tv", on=True))
        assert r.success, r.message
        assert wait_for(lambda: ("gamgin/devices/tv/set", {"state": "ON"}) in seen, 5)
        dev.publish("gamgin/devices/tv/state", json.dumps({"state": "ON", "volume": 55}), qos=1)
        assert wait_for(lambda: any(s.device.id == "tv" and s.origin == "backend"
                                    and "volume" in s.change for s in client.states), 5)
        assert client.devices()["tv"] == (True, {"volume": 55.0})
    finally:
        node.stop()
        dev.loop_stop()


def test_unreachable_broker_reports_error_and_node_stays_up(node_env, client, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    node = devices_node(node_env, tmp_path, backend="mqtt", mqtt_port=port,
                        mqtt_timeout_s=1.0).start()
    try:
        assert wait_for(lambda: any(d.name == "/gamgin/devices" and d.level == b"\x02"
                                    and "mosquitto" in d.message for d in client.diags()), 20)
        time.sleep(0.5)
        assert node.alive(), node.log()
    finally:
        node.stop()


def test_robot_room_topic_steers_typed_and_spoken_commands(node_env, client, probe, tmp_path):
    """robot/room (latched, as a navigation stack publishes it) reaches both nodes that
    understand commands: the devices node (devices/command) and the llm node, whose device
    fast path turns "关灯" into the robot's room's light, and answers the rest of a
    compound sentence on its other paths."""
    from gamgin_llm.testing import MODEL

    room_pub = probe.publisher(String, f"{NS}/robot/room", qos.STATE)
    room_pub.publish(String(data="bedroom"))  # before the nodes start: latched
    tokens = probe.collect(TokenChunk, f"{NS}/tokens", qos.TOKENS)
    talk = probe.publisher(Transcript, f"{NS}/transcript", qos.EVENTS)
    node = devices_node(node_env, tmp_path).start()
    llm = NodeProcess("gamgin_llm", "llm_node", "llm", node_env, log_dir=str(tmp_path), params={
        "model_path": str(MODEL), "warmup": False, "prefix_cache": False, "tools": ["devices"],
        "fast_paths": ["gamgin_llm.router:StopHandler",
                       "gamgin_devices.fastpath:DeviceFastPath"],
        "retriever": "", "model_languages": ["en"], "constrain_tools": True,
        "turn_timeout_s": 60.0}).start()

    def room_of(fqn: str, value: str) -> bool:
        return any(v.key == "robot_room" and v.value == value
                   for d in probe.diagnostics_of(client._diags, fqn) for v in d.values)

    try:
        assert client.call("power", SetPower.Request(device_id="bedroom_light", on=True)).success
        # The latched room and the command come on two topics, in no set order: without a
        # room "关灯" is a question ("哪个灯？客厅灯还是卧室灯？", CI once), so wait for it.
        assert wait_for(lambda: room_of(f"{NS}/devices", "bedroom"), 10), node.log()
        r = client.say("关灯", "zh", 1)  # devices/command: the latched room is known
        assert r.route == "intent" and "卧室灯" in r.text, node.log()
        assert client.devices()["bedroom_light"][0] is False
        room_pub.publish(String(data="living room"))  # the robot moved

        assert wait_for(lambda: room_of(f"{NS}/devices", "living_room"), 10), node.log()
        assert wait_for(lambda: room_of(f"{NS}/llm", "living room"), 30), llm.log()

        def said(turn_id: int, text: str, lang: str) -> str:
            assert probe.wait_for_subscribers(talk, timeout=30), llm.log()
            talk.publish(Transcript(text=text, language=lang, turn_id=turn_id, is_final=True,
                                    source="typed"))
            assert wait_for(lambda: any(t.turn_id == turn_id and t.is_final for t in tokens),
                            60), llm.log()
            return "".join(t.text for t in tokens if t.turn_id == turn_id)

        text = said(11, "turn on the lights", "en")  # the llm node's fast path, same room
        assert wait_for(lambda: client.devices()["living_room_light"][0] is True, 10), \
            llm.log()[-3000:]
        assert "living room light" in text
        # a compound: the device part is done, the rest still answered (by the model)
        text = said(12, "turn off the fan and tell me a short joke", "en")
        assert text.startswith("OK, fan off. ") and len(text) > len("OK, fan off. "), text
    finally:
        llm.stop()
        node.stop()
        probe.node.destroy_publisher(room_pub)
        probe.node.destroy_publisher(talk)
