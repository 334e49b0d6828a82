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


def test_a_command_and_something_else_leaves_the_rest_for_the_dialogue():
    fp = load_object("gamgin_devices.fastpath:DeviceFastPath", HandlerContext(tools=TOOLS))
    a = fp.handle("turn off the fan and tell me a short joke", "en")
    assert calls(a) == [("set_power", {"device_id": "fan", "on": False})]
    assert a.rest == "tell me a short joke" and "fan" in a.text
    a = fp.handle("关掉风扇然后打开电视", "zh")  # two commands: nothing left over
    assert calls(a) == [("set_power", {"device_id": "fan", "on": False}),
                        ("set_power", {"device_id": "tv", "on": True})] and a.rest == ""


def test_the_robots_room_comes_from_the_context():
    ctx = HandlerContext(tools=TOOLS)
    fp = load_object("gamgin_devices.fastpath:DeviceFastPath", ctx)
    assert fp.handle("关灯", "zh").actions == []  # room unknown: which light?
    ctx.robot_room = "bedroom"  # robot/room, as the llm node sets it
    assert calls(fp.handle("关灯", "zh")) == [("set_power", {"device_id": "bedroom_light",
                                                             "on": False})]
    ctx.robot_room = "客厅"  # a name works too
    assert calls(fp.handle("turn off the lights", "en")) == [
        ("set_power", {"device_id": "living_room_light", "on": False})]
    ctx.robot_room = ""  # unknown again
    assert fp.handle("关灯", "zh").actions == []


def test_end_to_end_through_the_dialogue():
    """The real fast path in gamgin_llm's Dialogue: the fan goes off and the rest of the
    sentence still gets an answer (here from a second fast path; the LLM otherwise)."""
    from gamgin_llm.core import Dialogue, DialogueConfig
    from gamgin_llm.memory import ConversationMemory
    from gamgin_llm.tools import Tool, ToolRegistry

    done: list = []
    reg = ToolRegistry()
    reg.register(Tool("set_power", "switch", {"type": "object", "properties": {
        "device_id": {"type": "string"}, "on": {"type": "boolean"}}},
        lambda a: (done.append(a), {"ok": True, "message": "ok"})[1]))

    class Jokes:
        def handle(self, text, lang):
            return FastAnswer("从前有只狗。", route="knowledge") if "笑话" in text else None

    fp = load_object("gamgin_devices.fastpath:DeviceFastPath", HandlerContext(
        tools=["set_power"], robot_room="bedroom"))
    d = Dialogue(None, DialogueConfig(), ConversationMemory(1000, 0, len), reg, [fp, Jokes()],
                 log=lambda s: None)
    out: list[str] = []
    r = d.respond("金坚，把灯关了，再给我讲个笑话", "zh", lambda: False, out.append)
    assert done == [{"device_id": "bedroom_light", "on": False}]
    assert out[0].startswith("好的") and "卧室灯" in out[0] and out[1] == "从前有只狗。"
    assert r.finish_reason == "stop"
