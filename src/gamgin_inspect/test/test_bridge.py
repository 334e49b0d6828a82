"""The Foxglove bridge, checked by a real WebSocket client speaking the Foxglove protocol."""

import asyncio
import json
import socket
import struct
import threading
import time

import pytest
import websockets
from rclpy.serialization import deserialize_message

from gamgin_common import qos, testing
from gamgin_common.schemas import SEPARATOR, ros2msg_schema
from gamgin_interfaces.msg import Transcript

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_schema_text_carries_every_dependency_once():
    text = ros2msg_schema("gamgin_interfaces/msg/DeviceState")
    assert text.startswith("# Published whenever a device changes")
    for dep in ("std_msgs/Header", "builtin_interfaces/Time", "gamgin_interfaces/Device",
                "gamgin_interfaces/DeviceParam"):
        assert text.count(f"MSG: {dep}\n") == 1, dep
    assert text.count(SEPARATOR) == 4


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


async def read_transcript(port: int, topic: str, timeout: float) -> tuple[Transcript, dict]:
    async with websockets.connect(f"ws://127.0.0.1:{port}",
                                  subprotocols=["foxglove.sdk.v1", "foxglove.websocket.v1"],
                                  max_size=None) as ws:
        channel = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            frame = await asyncio.wait_for(ws.recv(), deadline - time.monotonic())
            if isinstance(frame, str):
                msg = json.loads(frame)
                if msg.get("op") == "advertise":
                    for ch in msg["channels"]:
                        if ch["topic"] == topic:
                            channel = ch
                            await ws.send(json.dumps({"op": "subscribe", "subscriptions": [
                                {"id": 7, "channelId": ch["id"]}]}))
            elif frame[0] == 0x01:  # message data: op, subscription id, log time, payload
                sub_id, _log_time = struct.unpack_from("<IQ", frame, 1)
                assert sub_id == 7
                return deserialize_message(frame[13:], Transcript), channel
        raise TimeoutError(f"no message on {topic}; advertised channel: {channel}")


def test_a_foxglove_client_receives_and_decodes_a_published_transcript(probe, node_env, tmp_path):
    port = free_port()
    pub = probe.publisher(Transcript, "/gamgin/transcript", qos.EVENTS)
    stop = threading.Event()

    def publish() -> None:
        while not stop.is_set():
            pub.publish(Transcript(turn_id=42, text="把客厅的灯打开", language="zh", is_final=True,
                                   confidence=0.9))
            time.sleep(0.2)

    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()
    with testing.NodeProcess("gamgin_inspect", "bridge_node", "foxglove_bridge", node_env,
                             params={"port": port, "discover_period_s": 0.5},
                             log_dir=str(tmp_path)) as bridge:
        assert testing.wait_for(lambda: port_open(port), 30), bridge.log()
        try:
            msg, channel = asyncio.run(read_transcript(port, "/gamgin/transcript", 30))
        finally:
            stop.set()
            publisher.join()
        assert bridge.alive(), bridge.log()
    assert (msg.turn_id, msg.text, msg.language, msg.is_final) == (42, "把客厅的灯打开", "zh", True)
    assert channel["encoding"] == "cdr" and channel["schemaEncoding"] == "ros2msg"
    assert channel["schemaName"] == "gamgin_interfaces/Transcript"
    assert "MSG: builtin_interfaces/Time" in channel["schema"]
