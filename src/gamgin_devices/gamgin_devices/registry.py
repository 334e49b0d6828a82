"""The device registry (config/devices.yaml) and value validation. Pure Python, no ROS.

A registry is static: which devices exist, what they are called in Chinese and English,
and which parameters they have with their ranges. The changing state lives in
``core.DeviceController``.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from gamgin_common.paths import workspace_root

# The HA intent domain of each device type (home-assistant-intents speaks in domains).
TYPE_DOMAIN = {"light": "light", "climate": "climate", "fan": "fan",
               "media_player": "media_player", "water_heater": "water_heater",
               "switch": "switch"}
# Whose parameter a bare word means: "the temperature" is the room's (the AC), not the
# water heater's; used only when the user names no device or kind of device.
PARAM_DOMAIN = {"temperature": "climate", "brightness": "light", "volume": "media_player",
                "speed": "fan"}


class RegistryError(ValueError):
    """The registry file is wrong; the message names the file, the entry and the fix."""


class UnknownDevice(KeyError):
    """No device with this id; ``suggestions`` are close ids."""

    def __init__(self, device_id: str, suggestions: list[str]) -> None:
        super().__init__(device_id)
        self.device_id, self.suggestions = device_id, suggestions

    def __str__(self) -> str:
        hint = f"; did you mean {', '.join(self.suggestions)}?" if self.suggestions else ""
        return f"unknown device {self.device_id!r}{hint}"


class Refused(ValueError):
    """A command that must not be applied (out of range, unknown parameter, not a number)."""


@dataclass(frozen=True)
class ParamSpec:
    name: str
    min: float
    max: float
    step: float = 0.0  # 0 = continuous
    unit: str = ""
    default: float = 0.0
    nudge: float = 1.0  # what "a bit" / "一点" changes
    clamp: bool = False  # clamp out-of-range values instead of refusing them

    def check(self, value: float) -> float:
        """The value as it will be applied (step-rounded, maybe clamped), or Refused."""
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise Refused(f"{self.name} must be a number, got {value!r}") from None
        if not math.isfinite(value):
            raise Refused(f"{self.name} must be a finite number, got {value}")
        if self.step > 0:
            value = self.min + round((value - self.min) / self.step) * self.step
            value = round(value, 6)  # 0.1 + 0.2 noise must not reach a device or a reply
        if value < self.min or value > self.max:
            if not self.clamp:
                raise Refused(f"{self.name} {fmt_number(value)}{self.unit} is out of range "
                              f"{fmt_number(self.min)}–{fmt_number(self.max)}{self.unit}")
            value = min(max(value, self.min), self.max)
        return value


@dataclass(frozen=True)
class RoomSpec:
    id: str
    name_zh: str
    name_en: str
    aliases_zh: tuple[str, ...] = ()
    aliases_en: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeviceSpec:
    id: str
    name_zh: str
    name_en: str
    room: str
    type: str
    params: dict[str, ParamSpec] = field(default_factory=dict)
    aliases_zh: tuple[str, ...] = ()
    aliases_en: tuple[str, ...] = ()
    needs_confirmation: bool = False
    command_topic: str = ""
    state_topic: str = ""

    @property
    def domain(self) -> str:
        return TYPE_DOMAIN.get(self.type, self.type)

    @property
    def primary_param(self) -> ParamSpec | None:
        return next(iter(self.params.values()), None)

    def name(self, lang: str) -> str:
        return self.name_zh if lang.startswith("zh") else self.name_en

    def param(self, name: str) -> ParamSpec:
        if name not in self.params:
            have = ", ".join(self.params) or "none"
            raise Refused(f"{self.id} has no parameter {name!r} (it has: {have})")
        return self.params[name]


@dataclass(frozen=True)
class Registry:
    devices: dict[str, DeviceSpec]
    rooms: dict[str, RoomSpec]
    source: str = ""
    # the room the robot is in when nothing else says so ("" = unknown): a command that
    # names no room means this one, as a Home Assistant satellite's area does. A
    # navigation stack overrides it at run time (topic robot/room).
    robot_room: str = ""

    def room_id(self, text: str) -> str:
        """The room a word means: an id, or a Chinese/English name or alias; "" if none."""
        key = (text or "").strip().lower()
        if not key:
            return ""
        for r in self.rooms.values():
            if key in {r.id.lower(), r.name_zh, r.name_en.lower(), *r.aliases_zh,
                       *(a.lower() for a in r.aliases_en)}:
                return r.id
        return ""

    def get(self, device_id: str) -> DeviceSpec:
        dev = self.devices.get(device_id)
        if dev is None:
            raise UnknownDevice(device_id, self.close_matches(device_id))
        return dev

    def close_matches(self, text: str, n: int = 3) -> list[str]:
        """Device ids whose id, names or aliases look like ``text``."""
        keys: dict[str, str] = {}
        for dev in self.devices.values():
            for k in (dev.id, dev.name_zh, dev.name_en, *dev.aliases_zh, *dev.aliases_en):
                keys.setdefault(k.lower(), dev.id)
        found: list[str] = []
        for k in difflib.get_close_matches(text.lower(), list(keys), n=n * 3, cutoff=0.4):
            if keys[k] not in found:
                found.append(keys[k])
        # substrings count too: "light" should suggest every light
        for k, dev_id in keys.items():
            if text and (text.lower() in k or k in text.lower()) and dev_id not in found:
                found.append(dev_id)
        return found[:n]


def default_registry_path() -> Path:
    root = workspace_root()
    if root is None:
        raise RegistryError("cannot find the workspace (no $GAMGIN_HOME and no config/ near "
                            "this package): pass the registry path explicitly")
    return root / "config" / "devices.yaml"


def load_registry(path: str | Path | None = None) -> Registry:
    path = Path(path) if path else default_registry_path()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RegistryError(f"device registry {path} not found (copy config/devices.yaml "
                            "from the repository or set registry_file)") from None
    except yaml.YAMLError as exc:
        raise RegistryError(f"device registry {path} is not valid YAML: {exc}") from None
    return parse_registry(raw, str(path))


def parse_registry(raw: object, source: str = "<dict>") -> Registry:
    if not isinstance(raw, dict) or not isinstance(raw.get("devices"), dict):
        raise RegistryError(f"{source}: expected a mapping with a 'devices' mapping")
    rooms: dict[str, RoomSpec] = {}
    for rid, r in (raw.get("rooms") or {}).items():
        if not isinstance(r, dict) or "zh" not in r or "en" not in r:
            raise RegistryError(f"{source}: room {rid!r} needs 'zh' and 'en' names")
        rooms[rid] = RoomSpec(rid, str(r["zh"]), str(r["en"]),
                              tuple(map(str, r.get("aliases_zh") or ())),
                              tuple(map(str, r.get("aliases_en") or ())))
    confirm = set(raw.get("require_confirmation") or ())
    mqtt = raw.get("mqtt") or {}
    devices: dict[str, DeviceSpec] = {}
    for did, d in raw["devices"].items():
        where = f"{source}: device {did!r}"
        if not isinstance(d, dict):
            raise RegistryError(f"{where} must be a mapping")
        missing = [k for k in ("name_zh", "name_en", "room", "type") if k not in d]
        if missing:
            raise RegistryError(f"{where} lacks {', '.join(missing)}")
        if d["room"] not in rooms:
            raise RegistryError(f"{where}: room {d['room']!r} is not in 'rooms' "
                                f"({', '.join(rooms) or 'none defined'})")
        params: dict[str, ParamSpec] = {}
        for pname, p in (d.get("params") or {}).items():
            try:
                spec = ParamSpec(pname, float(p["min"]), float(p["max"]),
                                 float(p.get("step", 0)), str(p.get("unit", "")),
                                 float(p.get("default", p["min"])), float(p.get("nudge", 1)),
                                 bool(p.get("clamp", False)))
            except (KeyError, TypeError, ValueError) as exc:
                raise RegistryError(f"{where}: param {pname!r} needs numeric min/max "
                                    f"({exc})") from None
            if spec.min > spec.max or spec.step < 0:
                raise RegistryError(f"{where}: param {pname!r} needs min <= max, step >= 0")
            if not spec.min <= spec.default <= spec.max:
                raise RegistryError(f"{where}: param {pname!r} default outside min..max")
            params[pname] = spec
        own = d.get("mqtt") or {}
        devices[did] = DeviceSpec(
            id=did, name_zh=str(d["name_zh"]), name_en=str(d["name_en"]), room=d["room"],
            type=str(d["type"]), params=params,
            aliases_zh=tuple(map(str, d.get("aliases_zh") or ())),
            aliases_en=tuple(map(str, d.get("aliases_en") or ())),
            needs_confirmation=did in confirm,
            command_topic=str(own.get("command_topic", mqtt.get("command_topic",
                                      "gamgin/devices/{id}/set"))).format(id=did),
            state_topic=str(own.get("state_topic", mqtt.get("state_topic",
                                    "gamgin/devices/{id}/state"))).format(id=did))
    unknown = confirm - set(devices)
    if unknown:
        raise RegistryError(f"{source}: require_confirmation names unknown {sorted(unknown)}")
    registry = Registry(devices, rooms, source)
    said = str(raw.get("robot_room") or "").strip()
    room = registry.room_id(said)
    if said and not room:
        raise RegistryError(f"{source}: robot_room {said!r} is not in 'rooms' "
                            f"({', '.join(rooms) or 'none defined'}); \"\" = unknown")
    return Registry(devices, rooms, source, room)


def fmt_number(v: float) -> str:
    """26.0 -> "26", 26.5 -> "26.5": what a person says."""
    return str(int(v)) if float(v).is_integer() else f"{v:g}"
