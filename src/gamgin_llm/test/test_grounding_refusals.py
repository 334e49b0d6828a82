"""The model's device calls are refused unless they do what the words ask: the device named,
on vs off, up vs down, and now (not a story, a "don't" or "tomorrow")."""

from __future__ import annotations

import pytest

from gamgin_llm.chat import ToolCall
from gamgin_llm.grounding import check_call, direction_words, not_now


def _dev(en: str, zh: str, aliases: list[str], room: str, typ: str, param: str,
         value: float) -> dict:
    return {"name_en": en, "name_zh": zh, "aliases": aliases, "room": room, "type": typ,
            "params": [param], "values": {param: value}, "on": False}


# config/devices.yaml as devices/state reports it (with the current values)
DEVICES: dict[str, dict] = {
    "living_room_light": _dev("living room light", "客厅灯", ["客厅的灯", "客厅大灯", "大灯",
                              "lounge light", "main light"], "living_room", "light",
                              "brightness", 80.0),
    "bedroom_light": _dev("bedroom light", "卧室灯", ["卧室的灯", "床头灯", "bedside lamp"],
                          "bedroom", "light", "brightness", 60.0),
    "bedroom_ac": _dev("bedroom air conditioner", "卧室空调", ["空调", "卧室的空调", "冷气",
                       "air conditioner", "ac", "bedroom ac", "air conditioning"], "bedroom",
                       "climate", "temperature", 26.0),
    "fan": _dev("fan", "风扇", ["电扇", "电风扇", "electric fan"], "living_room", "fan", "speed",
                1.0),
    "tv": _dev("tv", "电视", ["电视机", "客厅电视", "television", "telly"], "living_room",
               "media_player", "volume", 30.0),
    "water_heater": _dev("water heater", "热水器", ["电热水器", "boiler"], "bathroom",
                         "water_heater", "temperature", 50.0),
}


def power(dev: str, on: bool) -> ToolCall:
    return ToolCall("set_power", {"device_id": dev, "on": on})


def param(dev: str, name: str, value: float) -> ToolCall:
    return ToolCall("set_param", {"device_id": dev, "name": name, "value": value})


def verdict(call: ToolCall, text: str, room: str = "") -> str:
    return check_call(call, "device", text, DEVICES, robot_room=room).action


@pytest.mark.parametrize("text, call", [
    ("turn on the fan", power("fan", False)),
    ("关掉风扇", power("fan", True)),
    ("把电视打开", power("tv", False)),
    ("switch off the bedroom light", power("bedroom_light", True)),
    # two commands: the clause that names the device says which way
    ("关掉风扇然后打开电视", power("fan", True)),
    ("turn on the tv and turn off the fan", power("tv", False)),
    # a power call on words that ask for no power change
    ("turn the tv up", power("tv", True)),
])
def test_power_the_wrong_way_is_refused(text, call):
    assert verdict(call, text) == "drop"


@pytest.mark.parametrize("text, call", [
    ("turn on the fan", power("fan", True)),
    ("关掉风扇然后打开电视", power("tv", True)),
    ("关掉风扇然后打开电视", power("fan", False)),
    ("kill the fan", power("fan", False)),
    ("lights out in the bedroom", power("bedroom_light", False)),
])
def test_power_the_asked_way_runs(text, call):
    assert verdict(call, text) == "run"


@pytest.mark.parametrize("text, call", [
    ("把空调调高两度", param("bedroom_ac", "temperature", 2)),  # "two degrees" as the value
    ("空调调低一点", param("bedroom_ac", "temperature", 27)),
    ("把大灯调暗一点", param("living_room_light", "brightness", 90)),  # 大灯 is no "大"
    ("turn the volume down on the tv", param("tv", "volume", 40)),
    ("make it a bit warmer", param("bedroom_ac", "temperature", 24)),
    ("热水器温度调高五度", param("water_heater", "temperature", 45)),  # 热水器 is no "热"
])
def test_a_change_the_wrong_way_is_refused(text, call):
    assert verdict(call, text) == "drop"


@pytest.mark.parametrize("text, call", [
    ("把空调调高两度", param("bedroom_ac", "temperature", 28)),
    ("把大灯调暗一点", param("living_room_light", "brightness", 60)),
    ("make it a bit warmer", param("bedroom_ac", "temperature", 27)),  # the air, not the boiler
    ("set the ac to 24 degrees", param("bedroom_ac", "temperature", 24)),
])
def test_a_change_the_asked_way_runs(text, call):
    assert verdict(call, text) == "run"


def test_directions_of_words():
    assert direction_words("太热了", []) == -1  # a complaint asks for the opposite
    assert direction_words("好冷啊", []) == 1
    assert direction_words("电视声音太小了", ["电视"]) == 1
    assert direction_words("I'm freezing", []) == 1
    assert direction_words("make it cooler", []) == -1
    assert direction_words("把大灯打开", ["大灯"]) == 0
    assert direction_words("set the ac to 24", []) == 0


@pytest.mark.parametrize("text, call", [
    ("I turned on the fan this morning", power("fan", True)),
    ("我刚才把电视关了", power("tv", False)),
    ("don't turn off the light in the living room", power("living_room_light", False)),
    ("不要关客厅灯", power("living_room_light", False)),
    ("明天把空调打开", power("bedroom_ac", True)),
    ("turn on the fan in five minutes", power("fan", True)),
    ("the fan is noisy today", power("fan", False)),
    ("我不喜欢这个电视剧", power("tv", False)),
    # reports, measured on the dev set with Qwen2.5-0.5B
    ("the tv is on", power("tv", True)),
    ("电视开了", param("tv", "volume", 50)),
    # a value nobody said
    ("turn on the tv", param("tv", "volume", 50)),
])
def test_not_a_command_for_now_is_refused(text, call):
    assert verdict(call, text) == "drop"


def test_not_now_leaves_requests_alone():
    assert not not_now("帮我把电视关了") and not not_now("please turn off the tv")
    assert not_now("我把电视关了") and not_now("don't turn off the tv")


def test_all_and_here():
    # "all the lights": each light; without "all" two lights fit and the model must ask
    assert verdict(power("bedroom_light", False), "turn off all the lights") == "run"
    assert verdict(power("living_room_light", False), "关掉家里所有的灯") == "run"
    assert verdict(power("bedroom_light", False), "turn off the lights") == "ask"
    # "here" is the robot's room when it is known, and nothing when it is not
    assert verdict(power("bedroom_light", False), "turn off the light here", "bedroom") == "run"
    assert verdict(power("living_room_light", False), "turn off the light here",
                   "bedroom") == "ask"
    assert verdict(power("bedroom_light", False), "turn off the light here") == "ask"
