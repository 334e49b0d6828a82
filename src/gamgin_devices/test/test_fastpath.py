"""The devices fast path as gamgin_llm loads it (its own load_object and types)."""

from __future__ import annotations

from gamgin_llm.router import FastAnswer, HandlerContext, load_object

TOOLS = ["set_power", "set_param", "list_devices", "play_music", "stop_music"]


def calls(answer: FastAnswer) -> list[tuple]:
    return [(c.name, c.arguments) for c in answer.actions]


def test_loads_by_dotted_name_and_answers():
    ctx = HandlerContext(tools=TOOLS, devices={
        "bedroom_ac": {"name_zh": "卧室空调", "params": ["temperature"],
                       "values": {"temperature": 27.0}}})
    fp = load_object("gamgin_devices.fastpath:DeviceFastPath", ctx)
    a = fp.handle("金坚，把客厅的灯打开", "zh")
    assert calls(a) == [("set_power", {"device_id": "living_room_light", "on": True})]
    assert a.route == "intent" and "客厅灯" in a.text
    a = fp.handle("把空调调高两度", "zh")  # relative, resolved from the context's values
    assert calls(a) == [("set_param", {"device_id": "bedroom_ac", "name": "temperature",
                                       "value": 29.0})]
    a = fp.handle("play something by Adele", "en")
    assert calls(a) == [("play_music", {"query": "adele"})]
    assert fp.handle("what is the capital of france", "en") is None


def test_without_values_relative_falls_through():
    fp = load_object("gamgin_devices.fastpath:DeviceFastPath", HandlerContext(tools=TOOLS))
    assert fp.handle("把空调调高两度", "zh") is None  # the LLM (with list_devices) decides
    assert fp.handle("下一首", "zh") is None  # no music_control tool registered
    ctx = HandlerContext(tools=[*TOOLS, "music_control"])
    fp = load_object("gamgin_devices.fastpath:DeviceFastPath", ctx)
    assert calls(fp.handle("下一首", "zh")) == [("music_control", {"action": "next"})]
