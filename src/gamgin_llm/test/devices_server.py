"""Test-only devices service server (real ROS services over DDS) until gamgin_devices lands.

Serves devices/set_power, devices/set_param, devices/list for two devices and publishes
each change on devices/state (latched), so a test sees a tool call arrive.
Run: python devices_server.py  (ROS_DOMAIN_ID from the environment)
"""

from __future__ import annotations

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from gamgin_common import qos
from gamgin_interfaces.msg import Device, DeviceParam, DeviceState
from gamgin_interfaces.srv import ListDevices, SetDeviceParam, SetPower


class DevicesServer(Node):
    def __init__(self) -> None:
        super().__init__("devices", namespace="/gamgin")
        self.devices = {
            "kitchen_light": Device(id="kitchen_light", name_zh="厨房灯",
                                    name_en="kitchen light", room="kitchen", type="light",
                                    on=True, params=[DeviceParam(name="brightness", value=80.0,
                                                                 min=0.0, max=100.0, step=1.0,
                                                                 unit="%")]),
            "living_room_light": Device(id="living_room_light", name_zh="客厅灯",
                                        name_en="living room light", room="living_room",
                                        type="light", on=False),
            "bedroom_fan": Device(id="bedroom_fan", name_zh="卧室风扇", name_en="bedroom fan",
                                  room="bedroom", type="fan", on=False),
        }
        self.pub = self.create_publisher(DeviceState, "devices/state", qos.DEVICE_STATE)
        self.create_service(SetPower, "devices/set_power", self.set_power)
        self.create_service(SetDeviceParam, "devices/set_param", self.set_param)
        self.create_service(ListDevices, "devices/list", self.list)
        for d in self.devices.values():
            self.publish(d, "init")

    def publish(self, d: Device, change: str) -> None:
        msg = DeviceState(device=d, change=change, origin="service")
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub.publish(msg)

    def set_power(self, req: SetPower.Request, res: SetPower.Response) -> SetPower.Response:
        d = self.devices.get(req.device_id)
        if d is None:
            res.success, res.message = False, f"unknown device {req.device_id!r}"
            return res
        d.on = req.on
        print(f"set_power {req.device_id} {req.on}", flush=True)
        self.publish(d, "power")
        res.success, res.message = True, f"{d.name_en} is {'on' if d.on else 'off'}"
        return res

    def set_param(self, req, res):
        d = self.devices.get(req.device_id)
        p = next((p for p in d.params if p.name == req.name), None) if d else None
        if p is None:
            res.success, res.message = False, f"no parameter {req.name!r} on {req.device_id!r}"
            return res
        p.value = min(max(req.value, p.min), p.max)
        self.publish(d, req.name)
        res.success, res.message, res.value = True, f"{req.name} set", p.value
        return res

    def list(self, req, res):
        res.devices = [d for d in self.devices.values() if not req.room or d.room == req.room]
        return res


def main() -> None:
    rclpy.init()
    node = DevicesServer()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
