"""Foxglove WebSocket bridge for machines without rqt (foxglove-sdk, ros2msg + CDR).

Every topic under the bridged prefixes (/gamgin, /diagnostics, /rosout by default) is
advertised to Foxglove / Lichtblick with its ROS 2 schema. The ROS subscription behind a
channel exists only while a client is subscribed to it, so an idle bridge costs next to
nothing even with 50 mic chunks a second on the graph. Messages are forwarded as the raw
CDR bytes DDS delivered: no deserialization on the way.
"""

from __future__ import annotations

import threading
import time

from gamgin_common import qos
from gamgin_common.health import OK
from gamgin_common.schemas import message_class, ros2msg_schema
from gamgin_common.stage import StageError, StageNode, run_stage


class BridgeNode(StageNode):
    def __init__(self) -> None:
        super().__init__("foxglove_bridge")
        p = self.declare_parameter
        self.host = str(p("host", "127.0.0.1").value)
        self.port = int(p("port", 8765).value)
        self.prefixes = list(p("topic_prefixes", ["/gamgin", "/diagnostics", "/rosout"]).value)
        self.discover_s = float(p("discover_period_s", 2.0).value)
        self._server = None
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

        try:
            self._server = foxglove.start_server(name="gamgin", host=self.host, port=self.port,
                                                 server_listener=Listener())
        except Exception as exc:
            raise StageError(f"cannot serve Foxglove on {self.host}:{self.port}: {exc} "
                             "(port in use? set the `port` parameter)") from exc
        self._timer = self.create_timer(self.discover_s, self._discover)
        self._discover()

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
                    schema=foxglove.Schema(name=type_name.replace("/msg/", "/"),
                                           encoding="ros2msg", data=schema.encode()))
        self.health.value("topics", len(self._fg_channels))
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
