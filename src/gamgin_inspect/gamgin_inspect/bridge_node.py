"""Foxglove WebSocket bridge for machines without rqt (foxglove-sdk, ros2msg + CDR).

Every topic under the bridged prefixes (/gamgin, /diagnostics, /rosout by default) is
advertised to Foxglove / Lichtblick with its ROS 2 schema. The ROS subscription behind a
channel exists only while a client is subscribed to it, so an idle bridge costs next to
nothing even with 50 mic chunks a second on the graph. Messages are forwarded as the raw
CDR bytes DDS delivered: no deserialization on the way. Viewers that offer only the
`foxglove.websocket.v1` subprotocol (Foxglove Studio 1.x) connect through subprotocol.py;
the bridge also publishes the few topics a viewer's panels need (view.py).
"""

from __future__ import annotations

import threading
import time

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from gamgin_common import qos
from gamgin_common.health import OK
from gamgin_common.schemas import message_class, ros2msg_schema
from gamgin_common.stage import StageError, StageNode, run_stage
from gamgin_inspect import view
from gamgin_inspect.subprotocol import SubprotocolAdapter
from gamgin_interfaces.msg import DeviceState, TurnState


class BridgeNode(StageNode):
    def __init__(self) -> None:
        super().__init__("foxglove_bridge")
        p = self.declare_parameter
        self.host = str(p("host", "127.0.0.1").value)
        self.port = int(p("port", 8765).value)
        self.prefixes = list(p("topic_prefixes", ["/gamgin", "/diagnostics", "/rosout"]).value)
        self.discover_s = float(p("discover_period_s", 2.0).value)
        # false: only viewers offering the SDK's subprotocol names connect, without the
        # adapter's byte copying (see subprotocol.py)
        self.legacy = bool(p("accept_legacy_subprotocol", True).value)
        self._server = None
        self._adapter: SubprotocolAdapter | None = None
        self._fg_channels: dict[str, object] = {}  # topic -> foxglove.Channel
        self._fg_types: dict[str, str] = {}
        self._fg_subs: dict[str, object] = {}  # topic -> rclpy subscription
        self._fg_clients: dict[str, set[int]] = {}  # topic -> subscribed client ids
        self._lock = threading.Lock()
        self.health.value("address", f"ws://{self.host}:{self.port}")

    def configure_stage(self) -> None:
        import foxglove

        node = self

        class Listener(foxglove.ServerListener):
            def on_subscribe(self, client, channel) -> None:
                node._client_subscribed(client.id, channel.topic, True)

            def on_unsubscribe(self, client, channel) -> None:
                node._client_subscribed(client.id, channel.topic, False)

        # Viewers connect to the adapter, which takes foxglove.websocket.v1 as well as the
        # SDK's names; the SDK itself then listens on a loopback port of its own.
        if self.legacy:
            try:
                self._adapter = SubprotocolAdapter(self.host, self.port, 0)
            except OSError as exc:
                raise StageError(f"cannot serve Foxglove on {self.host}:{self.port}: {exc} "
                                 "(port in use? set the `port` parameter)") from exc
        host, port = ("127.0.0.1", 0) if self.legacy else (self.host, self.port)
        try:
            self._server = foxglove.start_server(name="gamgin", host=host, port=port,
                                                 server_listener=Listener())
        except Exception as exc:
            if self._adapter is not None:
                self._adapter.stop()
                self._adapter = None
            raise StageError(f"cannot serve Foxglove on {host}:{port}: {exc} "
                             "(port in use? set the `port` parameter)") from exc
        if self._adapter is not None:
            self._adapter.upstream_port = self._server.port
            self._adapter.start()
        self._view_topics()
        self._timer = self.create_timer(self.discover_s, self._discover)
        self._discover()

    # ------------------------------------------------------------------ derived topics
    def _view_topics(self) -> None:
        """Topics for the viewer's panels (gamgin_inspect/view.py says why), latched."""
        self._devices = view.DeviceBoard()
        turn_pub = self.stage_publisher(String, "inspect/turn_state", qos.STATE)
        playback_pub = self.stage_publisher(String, "inspect/playback", qos.STATE)
        # depth 1: a viewer that connects gets the current list, not its history
        self._devices_pub = self.stage_publisher(
            DiagnosticStatus, "inspect/devices",
            QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.TRANSIENT_LOCAL))
        self.stage_subscription(
            TurnState, "turn/state",
            lambda m: turn_pub.publish(String(data=view.turn_state_name(m.state))), qos.STATE)
        self.stage_subscription(
            TurnState, "audio/playback",
            lambda m: playback_pub.publish(String(data=view.playback_state_name(m.state))),
            qos.EVENTS)
        self.stage_subscription(DeviceState, "devices/state", self._on_device, qos.DEVICE_STATE)

    def _on_device(self, m: DeviceState) -> None:
        d = m.device
        label = " ".join(x for x in (d.name_zh, d.name_en) if x) or d.id
        if not self._devices.update(view.DeviceView(
                d.id, label, d.room, d.on, [(p.name, p.value, p.unit) for p in d.params])):
            return
        self._devices_pub.publish(DiagnosticStatus(
            name="devices", hardware_id="gamgin", message=self._devices.headline(),
            values=[KeyValue(key=k, value=v) for k, v in self._devices.rows()]))

    def activate_stage(self) -> None:
        self.health.ok(self._serving())

    def _serving(self) -> str:
        return f"serving ws://{self.host}:{self.port} ({len(self._fg_channels)} topics)"

    def cleanup_stage(self) -> None:
        self.destroy_timer(self._timer)
        with self._lock:
            for topic in list(self._fg_subs):
                self.destroy_subscription(self._fg_subs.pop(topic))
            for ch in self._fg_channels.values():
                ch.close()
            self._fg_channels.clear()
        if self._adapter is not None:
            self._adapter.stop()
            self._adapter = None
        if self._server is not None:
            self._server.stop()
            self._server = None

    # ------------------------------------------------------------------ channels
    def _discover(self) -> None:
        import foxglove

        for topic, types in self.get_topic_names_and_types():
            if topic in self._fg_channels or not any(
                    topic == p or topic.startswith(p.rstrip("/") + "/") for p in self.prefixes):
                continue
            type_name = types[0]
            try:
                schema = ros2msg_schema(type_name)
                message_class(type_name)
            except Exception as exc:
                self.health.count("unbridgeable_topics")
                self.log_throttled("unbridgeable", 30.0,
                                   f"cannot bridge {topic} ({type_name}): {exc}")
                continue
            with self._lock:
                self._fg_types[topic] = type_name
                self._fg_channels[topic] = foxglove.Channel(
                    topic, message_encoding="cdr",
                    schema=foxglove.Schema(name=type_name,  # pkg/msg/Type, as ROS 2 writes it
                                           encoding="ros2msg", data=schema.encode()))
        self.health.value("topics", len(self._fg_channels))
        if self._adapter is not None:  # viewers that needed the rename (Studio 1.x & co.)
            self.health.value("legacy_subprotocol_connections", self._adapter.renamed)
        if self.health.level == OK:
            self.health.ok(self._serving())

    def _client_subscribed(self, client_id: int, topic: str, subscribed: bool) -> None:
        with self._lock:
            clients = self._fg_clients.setdefault(topic, set())
            (clients.add if subscribed else clients.discard)(client_id)
            if clients and topic not in self._fg_subs and topic in self._fg_channels:
                channel = self._fg_channels[topic]

                def forward(raw: bytes, channel=channel) -> None:
                    channel.log(raw, log_time=time.time_ns())
                    self.health.count("messages_forwarded")

                self._fg_subs[topic] = self.create_subscription(
                    message_class(self._fg_types[topic]), topic, forward, qos.matching(self, topic),
                    raw=True)
            elif not clients and topic in self._fg_subs:
                self.destroy_subscription(self._fg_subs.pop(topic))
            self.health.value("bridged_subscriptions", len(self._fg_subs))


def main(args: list[str] | None = None) -> None:
    run_stage(BridgeNode, args)


if __name__ == "__main__":
    main()
