"""Registry, validation, controller and the simulated backend (pure Python)."""

from __future__ import annotations

import json
import math

import pytest

from gamgin_devices.backends import BackendError, DeviceStatus, make_backend
from gamgin_devices.backends.simulated import SimulatedBackend
from gamgin_devices.core import DeviceController
from gamgin_devices.registry import (
    Refused,
    RegistryError,
    UnknownDevice,
    load_registry,
    parse_registry,
)


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def controller(registry, path) -> DeviceController:
    c = DeviceController(registry, SimulatedBackend(path))
    c.start()
    return c


def test_default_registry_has_the_required_devices(registry):
    want = {"living_room_light": ("客厅灯", "brightness", 0, 100),
            "bedroom_ac": ("卧室空调", "temperature", 16, 30),
            "fan": ("风扇", "speed", 1, 3), "tv": ("电视", "volume", 0, 100)}
    for dev_id, (zh, param, lo, hi) in want.items():
        d = registry.get(dev_id)
        assert d.name_zh == zh and d.name_en
        assert (d.params[param].min, d.params[param].max) == (lo, hi)


def test_unknown_device_names_close_matches(registry):
    with pytest.raises(UnknownDevice) as exc:
        registry.get("living_room_lite")
    assert "living_room_light" in exc.value.suggestions
    assert "living_room_light" in str(exc.value)
    assert set(registry.close_matches("light")) >= {"living_room_light", "bedroom_light"}


def test_param_check_rounds_refuses_and_clamps(registry):
    temp = registry.get("bedroom_ac").param("temperature")
    assert temp.check(26.2) == 26.0 and temp.check(26.3) == 26.5
    for bad in (35, 15.7, math.nan, math.inf, "hot"):
        with pytest.raises(Refused):
            temp.check(bad)
    assert registry.get("tv").param("volume").check(140) == 100  # clamp configured
    with pytest.raises(Refused):
        registry.get("fan").param("volume")


@pytest.mark.parametrize("raw, words", [
    ({"devices": {"x": {"name_zh": "x", "name_en": "x", "room": "nowhere", "type": "light"}},
      "rooms": {"a": {"zh": "a", "en": "a"}}}, "nowhere"),
    ({"rooms": {"a": {"zh": "a", "en": "a"}}, "devices": {"x": {"name_zh": "x", "room": "a"}}},
     "lacks"),
    ({"rooms": {"a": {"zh": "a", "en": "a"}}, "devices": {"x": {
        "name_zh": "x", "name_en": "x", "room": "a", "type": "fan",
        "params": {"speed": {"min": 3, "max": 1}}}}}, "min <= max"),
    ({"devices": []}, "devices"),
])
def test_bad_registry_is_explained(raw, words):
    with pytest.raises(RegistryError, match=words):
        parse_registry(raw, "test.yaml")


def test_changes_persist_across_restart(registry, tmp_path):
    path = tmp_path / "state.json"
    c = controller(registry, path)
    assert c.set_power("living_room_light", True).success
    out = c.set_param("bedroom_ac", "temperature", 23.5)
    assert out.success and out.value == 23.5
    c.close()
    again = controller(registry, path)
    assert again.status("living_room_light").on is True
    assert again.status("bedroom_ac").params["temperature"] == 23.5
    assert again.status("fan").on is False
    assert not list(tmp_path.glob(".devices-*"))  # no temp file left behind
    assert json.loads(path.read_text())["devices"]["bedroom_ac"]["params"]["temperature"] == 23.5


def test_refused_calls_leave_state_and_file_unchanged(registry, tmp_path):
    path = tmp_path / "state.json"
    c = controller(registry, path)
    c.set_param("bedroom_ac", "temperature", 24)
    before, file_before = c.devices(), path.read_bytes()
    changes = []
    c.add_listener(lambda *a: changes.append(a))
    for call in (lambda: c.set_param("bedroom_ac", "temperature", 31),
                 lambda: c.set_param("bedroom_ac", "temperature", math.nan),
                 lambda: c.set_param("bedroom_ac", "brightness", 20),
                 lambda: c.set_param("bedroom_acc", "temperature", 20),
                 lambda: c.set_power("no_such_thing", True)):
        out = call()
        assert not out.success and out.message
    assert c.devices() == before and path.read_bytes() == file_before and changes == []
    assert c.refused == 5


def test_backend_failure_leaves_state_unchanged(registry, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    c = DeviceController(registry, SimulatedBackend(blocker / "state.json"))  # parent is a file
    c.start()
    out = c.set_power("fan", True)
    assert not out.success and "cannot write" in out.message
    assert c.status("fan").on is False and c.failed == 1


def test_corrupt_state_file_is_kept_and_defaults_used(registry, tmp_path):
    path = tmp_path / "state.json"
    path.write_text("{not json")
    c = DeviceController(registry, SimulatedBackend(path))
    assert "unreadable" in c.start()
    assert (tmp_path / "state.corrupt.json").exists()
    assert c.status("bedroom_ac").params["temperature"] == 26


def test_listeners_hear_changes(registry, tmp_path):
    c = controller(registry, tmp_path / "s.json")
    heard = []
    c.add_listener(lambda *a: heard.append(a))
    c.set_param("tv", "volume", 120, origin="voice")
    assert heard == [("tv", "volume", "voice")] and c.status("tv").params["volume"] == 100


def test_make_backend_rejects_unknown():
    with pytest.raises(ValueError, match="simulated"):
        make_backend("zigbee")
    assert DeviceStatus.from_dict({"on": 1, "params": {"a": "2"}}) == DeviceStatus(True, {"a": 2.0})
    assert BackendError


def test_backend_reports_are_clamped_and_non_numbers_ignored(registry, tmp_path):
    c = controller(registry, tmp_path / "s.json")
    c._on_external("bedroom_ac", {"params": {"temperature": math.nan}})
    c._on_external("fan", {"on": True, "params": {"speed": 9, "colour": 3}})
    c._on_external("ghost", {"on": True})
    assert c.status("bedroom_ac").params["temperature"] == 26
    assert c.status("fan") == DeviceStatus(True, {"speed": 3.0})


class ReportingBackend:
    """Like MQTT: while a command waits for its acknowledgement, the same network thread
    delivers a device's report. (The real race is not reproducible on demand.)"""

    name = "reporting"
    optimistic = True

    def start(self, registry, on_external):
        self.on_external = on_external
        return {}

    def apply(self, device_id, new, change, states):
        import threading

        t = threading.Thread(target=self.on_external,
                             args=("fan", {"params": {"speed": 2.0}}))
        t.start()
        t.join(2.0)
        if t.is_alive():
            raise BackendError("report stalled behind the command")

    def close(self):
        pass


def test_reports_during_a_command_do_not_stall(registry):
    c = DeviceController(registry, ReportingBackend())
    c.start()
    out = c.set_param("tv", "volume", 40)
    assert out.success, out.message
    assert c.status("fan").params["speed"] == 2.0 and c.status("tv").params["volume"] == 40
