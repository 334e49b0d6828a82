"""devices node: the appliance registry as ROS services, state changes on devices/state,
and typed/spoken commands on devices/command understood locally (intents.py). The robot's
room (a command that names no room means it) is ``robot_room`` in config/devices.yaml until
the latched topic robot/room says otherwise."""

from __future__ import annotations

import json

from std_msgs.msg import Header, String

from gamgin_common import qos
from gamgin_common.stage import StageError, StageNode, run_stage
from gamgin_devices.backends import BackendError, make_backend
from gamgin_devices.core import DeviceController
from gamgin_devices.executor import execute
from gamgin_devices.intents import DeviceIntents
from gamgin_devices.registry import RegistryError, load_registry
from gamgin_interfaces.msg import Device, DeviceParam, DeviceState, TokenChunk, Transcript
from gamgin_interfaces.srv import ListDevices, SetDeviceParam, SetPower


class DevicesNode(StageNode):
    def __init__(self) -> None:
        super().__init__("devices")
        p = self.declare_parameter
        self.registry_file = str(p("registry_file", "").value)
        self.backend_name = str(p("backend", "simulated").value)
        self.state_file = str(p("state_file", "").value)
        self.mqtt_host = str(p("mqtt_host", "127.0.0.1").value)
        self.mqtt_port = int(p("mqtt_port", 1883).value)
        self.mqtt_client_id = str(p("mqtt_client_id", "").value)
        self.mqtt_timeout_s = float(p("mqtt_timeout_s", 3.0).value)
        self.command_topic = str(p("command_topic", "devices/command").value)
        self.reply_topic = str(p("reply_topic", "devices/reply").value)
        self.music_topic = str(p("music_topic", "music/command").value)
        self.mqtt_optimistic = bool(p("mqtt_optimistic", True).value)
        # Safety: devices move only on the user's own words. Transcripts from other sources
        # (e.g. text quoted from documents or the web) are refused.
        self.allowed_sources = list(p("allowed_sources", ["stt", "typed", "replay"]).value)
        self.controller: DeviceController | None = None
        self.intents: DeviceIntents | None = None
        self.health.value("backend", self.backend_name)

    def configure_stage(self) -> None:
        try:
            registry = load_registry(self.registry_file or None)
            backend = make_backend(self.backend_name, state_file=self.state_file,
                                   host=self.mqtt_host, port=self.mqtt_port,
                                   client_id=self.mqtt_client_id, timeout_s=self.mqtt_timeout_s,
                                   optimistic=self.mqtt_optimistic)
        except (RegistryError, ValueError) as exc:
            raise StageError(str(exc)) from None
        self.controller = DeviceController(registry, backend)
        self.state_pub = self.stage_publisher(DeviceState, "devices/state", qos.DEVICE_STATE)
        self.reply_pub = self.stage_publisher(TokenChunk, self.reply_topic, qos.TOKENS)
        self.music_pub = self.stage_publisher(String, self.music_topic, qos.EVENTS)
        self.controller.add_listener(self._on_change)
        try:
            warning = self.controller.start()
        except BackendError as exc:
            self.controller = None
            raise StageError(str(exc)) from None
        if warning:  # kept as a value: activation resets the level to OK
            self.get_logger().warning(warning)
            self.health.value("state_warning", warning)
        self.intents = DeviceIntents(registry)
        self.stage_service(ListDevices, "devices/list", self._on_list)
        self.stage_service(SetPower, "devices/set_power", self._on_set_power)
        self.stage_service(SetDeviceParam, "devices/set_param", self._on_set_param)
        self.stage_subscription(Transcript, self.command_topic, self._on_command, qos.EVENTS)
        # latched: a navigation stack publishes where the robot is; "" = unknown
        self.stage_subscription(String, "robot/room", self._on_robot_room, qos.STATE)
        self.health.value("robot_room", self.intents.robot_room or "unknown")
        for spec, _ in self.controller.devices():  # latch the current state of every device
            self._on_change(spec.id, "startup", "backend")
        self.health.value("devices", len(registry.devices))
        self.health.value("registry", registry.source)

    def cleanup_stage(self) -> None:
        if self.controller is not None:
            self.controller.close()
        self.controller = self.intents = None

    # ------------------------------------------------------------------ services
    def _on_list(self, req: ListDevices.Request, resp: ListDevices.Response):
        resp.devices = [self._device_msg(d.id) for d, _ in self.controller.devices(req.room)]
        return resp

    def _on_set_power(self, req: SetPower.Request, resp: SetPower.Response):
        out = self.controller.set_power(req.device_id, req.on, origin="service")
        self._count(out.success)
        resp.success, resp.message = out.success, out.message
        return resp

    def _on_set_param(self, req: SetDeviceParam.Request, resp: SetDeviceParam.Response):
        out = self.controller.set_param(req.device_id, req.name, req.value, origin="service")
        self._count(out.success)
        resp.success, resp.message, resp.value = out.success, out.message, out.value
        return resp

    def _count(self, ok: bool) -> None:
        self.health.count("commands" if ok else "refused")

    # ------------------------------------------------------------------ voice/typed commands
    def _on_command(self, msg: Transcript) -> None:
        if not msg.is_final:
            return
        if msg.source not in self.allowed_sources:
            self.health.count("refused_sources")
            self.get_logger().warning(f"ignored device command from source {msg.source!r} "
                                   f"(allowed: {self.allowed_sources}): {msg.text!r}")
            self._reply(msg.turn_id, "", "error", "error")
            return
        try:
            answer = self.intents.handle(msg.text, msg.language or "zh",
                                         state=self.controller.values())
        except Exception as exc:
            self.get_logger().error(f"intent error on {msg.text!r}: {exc}")
            self.health.count("intent_errors")
            self._reply(msg.turn_id, "", "error", "error")
            return
        if answer is None:
            self.health.count("not_understood")
            self._reply(msg.turn_id, "", "stop", "fallback")
            return
        music = self._music if self.music_pub.get_subscription_count() > 0 else None
        speech = execute(answer, self.controller, self.intents, music, origin="voice")
        self.health.count("voice_commands")
        self.get_logger().info(f"{msg.text!r} -> {answer.intent}: {speech}"
                               + (f" (not for us: {answer.rest!r})" if answer.rest else ""))
        self._reply(msg.turn_id, speech, "stop", "intent")

    def _on_robot_room(self, msg: String) -> None:
        if self.intents is None:
            return
        said = msg.data.strip()
        room = self.intents.set_robot_room(said)
        if said and not room:
            self.get_logger().warning(f"robot/room {said!r} is no room of the registry: "
                                      "the robot's room is unknown")
        self.health.value("robot_room", room or "unknown")

    def _music(self, command: str, query: str) -> None:
        self.music_pub.publish(String(data=json.dumps({"command": command, "query": query},
                                                      ensure_ascii=False)))

    def _reply(self, turn_id: int, text: str, finish: str, route: str) -> None:
        msg = TokenChunk(header=Header(frame_id="devices"), turn_id=turn_id, seq=0, text=text,
                         is_final=True, finish_reason=finish, route=route)
        msg.header.stamp = self.get_clock().now().to_msg()
        self.reply_pub.publish(msg)

    # ------------------------------------------------------------------ state
    def _device_msg(self, device_id: str) -> Device:
        spec = self.controller.registry.get(device_id)
        st = self.controller.status(device_id)
        return Device(id=spec.id, name_zh=spec.name_zh, name_en=spec.name_en,
                      aliases=[*spec.aliases_zh, *spec.aliases_en], room=spec.room,
                      type=spec.type, on=st.on,
                      params=[DeviceParam(name=p.name, value=st.params[p.name], min=p.min,
                                          max=p.max, step=p.step, unit=p.unit)
                              for p in spec.params.values()])

    def _on_change(self, device_id: str, change: str, origin: str) -> None:
        msg = DeviceState(header=Header(frame_id="devices"), device=self._device_msg(device_id),
                          change=change, origin=origin)
        msg.header.stamp = self.get_clock().now().to_msg()
        self.state_pub.publish(msg)


def main(args: list[str] | None = None) -> None:
    run_stage(DevicesNode, args)


if __name__ == "__main__":
    main()
