"""No invented actions, and questions are not commands.

Measured bugs: "金坚，你好" heard as "Li Hao" became set_param(bedroom_light, "living-moth",
10) and an apology for a failed action; "Who is Mochi's vet?" was answered "I can't find
that device.". The pure rules (gamgin_llm.grounding), the dialogue replaying the measured
model output, the real packaged model on garbage transcripts, and the real router with
the devices and knowledge plug-ins."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from gamgin_llm.chat import Delta, ToolCall
from gamgin_llm.core import Dialogue, DialogueConfig
from gamgin_llm.grounding import asks_about_owner, check_call, mentions_device
from gamgin_llm.language import LINES, cjk_ratio
from gamgin_llm.memory import ConversationMemory
from gamgin_llm.router import HandlerContext, StopHandler, load_object
from gamgin_llm.tools import Tool, ToolRegistry, device_context, register_device_tools

# the packaged config/devices.yaml as the devices node reports it on devices/state
DEVICES: dict[str, dict] = {
    "living_room_light": {"name_en": "living room light", "name_zh": "客厅灯",
                          "aliases": ["客厅的灯", "客厅大灯", "大灯", "lounge light", "main light"],
                          "room": "living_room", "type": "light", "params": ["brightness"],
                          "values": {"brightness": 80.0}, "on": False},
    "bedroom_light": {"name_en": "bedroom light", "name_zh": "卧室灯",
                      "aliases": ["卧室的灯", "床头灯", "bedside lamp"], "room": "bedroom",
                      "type": "light", "params": ["brightness"],
                      "values": {"brightness": 60.0}, "on": False},
    "bedroom_ac": {"name_en": "bedroom air conditioner", "name_zh": "卧室空调",
                   "aliases": ["空调", "卧室的空调", "冷气", "air conditioner", "ac",
                               "bedroom ac", "air conditioning"],
                   "room": "bedroom", "type": "climate", "params": ["temperature"],
                   "values": {"temperature": 26.0}, "on": False},
    "fan": {"name_en": "fan", "name_zh": "风扇", "aliases": ["电扇", "电风扇", "electric fan"],
            "room": "living_room", "type": "fan", "params": ["speed"],
            "values": {"speed": 1.0}, "on": False},
    "tv": {"name_en": "tv", "name_zh": "电视", "aliases": ["电视机", "客厅电视", "television",
                                                         "telly"],
           "room": "living_room", "type": "media_player", "params": ["volume"],
           "values": {"volume": 30.0}, "on": False},
    "water_heater": {"name_en": "water heater", "name_zh": "热水器",
                     "aliases": ["电热水器", "boiler"], "room": "bathroom",
                     "type": "water_heater", "params": ["temperature"],
                     "values": {"temperature": 50.0}, "on": False},
}
MEASURED = ToolCall("set_param", {"device_id": "bedroom_light", "name": "living-moth",
                                  "value": 10})
GARBAGE = [
    ("Li Hao", "en"), ("living moth", "en"), ("Thank you.", "en"), ("Thanks for watching!", "en"),
    ("ba lo ka mi tu", "en"), ("Bonjour, comment ça va ?", "en"),
    ("Guten Tag, wie geht es dir?", "en"), ("こんにちは、元気ですか", "en"),
    ("Who is Mochi's vet?", "en"), ("李浩", "zh"), ("嗯嗯啊", "zh"),
]
APOLOGY = ("didn't work", "failed", "没办成", "Sorry, that")


def device_registry(log: list[dict]) -> ToolRegistry:
    """The dialogue's device tools as the node registers them; each call is logged where
    the node would call the devices/* service."""
    def service(name: str) -> Callable[[dict], dict]:
        return lambda args: (log.append({"service": name, **args}),
                             {"ok": True, "message": f"{name} done"})[1]

    reg = ToolRegistry()
    register_device_tools(reg, lambda: DEVICES, service("set_power"), service("set_param"),
                          lambda args: {"ok": True, "message": json.dumps(list(DEVICES))})
    reg.register(Tool("play_music", "play local music",
                      {"type": "object", "properties": {"query": {"type": "string"}}},
                      service("play_music"), acts="music"))
    return reg


# ---------------------------------------------------------------- the rules
@pytest.mark.parametrize("text, lang", GARBAGE)
@pytest.mark.parametrize("call", [
    MEASURED, ToolCall("set_power", {"device_id": "fan", "on": True}),
    ToolCall("set_param", {"device_id": "tv", "name": "volume", "value": 20})])
def test_unclear_words_never_move_a_device(text, lang, call):
    v = check_call(call, "device", text, DEVICES)
    assert v.action == "drop", v  # no device intent at all: dropped, nothing to ask


@pytest.mark.parametrize("text, call", [
    ("Turn on the bedroom light",
     ToolCall("set_power", {"device_id": "bedroom_light", "on": True})),
    ("switch the lights off in the living room",
     ToolCall("set_power", {"device_id": "living_room_light", "on": False})),
    ("can you turn on the fan please", ToolCall("set_power", {"device_id": "fan", "on": True})),
    ("set the volume to 20", ToolCall("set_param", {"device_id": "tv", "name": "volume",
                                                    "value": 20})),  # the one with a volume
    ("把卧室里的空调打开", ToolCall("set_power", {"device_id": "bedroom_ac", "on": True})),
    ("关掉床头灯", ToolCall("set_power", {"device_id": "bedroom_light", "on": False})),
])
def test_a_real_command_runs(text, call):
    v = check_call(call, "device", text, DEVICES)
    assert v.action == "run" and v.call == call, v


def test_a_device_the_words_do_not_name_is_asked_about():
    v = check_call(ToolCall("set_power", {"device_id": "bedroom_light", "on": True}), "device",
                   "turn on the light", DEVICES)
    assert v.action == "ask" and set(v.options) == {"living_room_light", "bedroom_light"}
    v = check_call(ToolCall("set_power", {"device_id": "tv", "on": False}), "device",
                   "turn off the bedroom light", DEVICES)
    assert v.action == "ask" and v.options == ("bedroom_light",)
    assert check_call(ToolCall("set_power", {"device_id": "fan", "on": False}), "device",
                      "turn it off", DEVICES).action == "ask"


@pytest.mark.parametrize("text", ["is the tv on?", "how do I turn on the fan?",
                                  "why is the bedroom light on", "客厅灯开着吗", "怎么打开空调",
                                  "I like the tv", "我喜欢空调", "我离开客厅了"])
def test_a_question_about_a_device_moves_nothing(text):
    call = ToolCall("set_power", {"device_id": "tv", "on": True})
    assert check_call(call, "device", text, DEVICES).action == "drop"


def test_the_parameter_must_exist_on_the_device():
    # one parameter: "set the tv to 20" can only mean it
    v = check_call(ToolCall("set_param", {"device_id": "tv", "name": "level", "value": 20}),
                   "device", "set the tv to 20", DEVICES)
    assert v.action == "run" and v.call.arguments["name"] == "volume"
    lamp = {"lamp": {"name_en": "desk lamp", "type": "light",
                     "params": ["brightness", "color_temp"]}}
    v = check_call(ToolCall("set_param", {"device_id": "lamp", "name": "living-moth",
                                          "value": 10}), "device", "set the desk lamp to 10",
                   lamp)
    assert v.action == "ask" and v.param_of == "lamp" and v.options == ("brightness",
                                                                         "color_temp")


@pytest.mark.parametrize("text, on", [("请把卧室风扇打开", True), ("卧室风扇关掉", False),
                                      ("turn on the bedroom fan", True),
                                      ("switch the bedroom fan off", False)])
def test_a_parameter_on_a_device_without_any_is_the_power_call_the_words_say(text, on):
    """Qwen2.5-0.5B, measured: "请把卧室风扇打开" -> set_param(bedroom_fan, brightness, 100)."""
    fans = {"bedroom_fan": {"name_en": "bedroom fan", "name_zh": "卧室风扇", "room": "bedroom",
                            "type": "fan", "params": []}}
    v = check_call(ToolCall("set_param", {"device_id": "bedroom_fan", "name": "brightness",
                                          "value": 100}), "device", text, fans)
    assert v.action == "run" and v.call.name == "set_power"
    assert v.call.arguments == {"device_id": "bedroom_fan", "on": on}
    v = check_call(ToolCall("set_param", {"device_id": "bedroom_fan", "name": "brightness",
                                          "value": 100}), "device", "set the bedroom fan to 100",
                   fans)
    assert v.action == "ask"


def test_a_device_read_needs_words_about_devices():
    call = ToolCall("list_devices", {"room": "home"})
    assert check_call(call, "device_read", "今天晚上吃什么好呢？", DEVICES).action == "drop"
    assert check_call(call, "device_read", "What should I wear tomorrow?", DEVICES).action == "drop"
    assert check_call(call, "device_read", "家里有哪些设备开着？", DEVICES).action == "run"
    assert check_call(call, "device_read", "is the tv on?", DEVICES).action == "run"


def test_music_needs_music_words():
    call = ToolCall("play_music", {"query": "Li Hao"})
    assert check_call(call, "music", "Li Hao", DEVICES).action == "drop"
    assert check_call(call, "music", "play some music by Li Hao", DEVICES).action == "run"
    assert check_call(ToolCall("list_devices", {}), "", "Li Hao", DEVICES).action == "run"


@pytest.mark.parametrize("text, owner", [
    ("Who is Mochi's vet?", True), ("Mochi的兽医是谁？", True), ("What's my name?", True),
    ("When does my car insurance expire?", True), ("我的护照什么时候过期？", True),
    ("What's your name?", False), ("What is the weather like?", False),
    ("今天的天气怎么样？", False), ("Turn on the light", False), ("Li Hao", False),
    ("What's today's weather?", False), ("Who is the world's tallest man?", False),
    ("Is my bedroom light on?", True),  # but it names a device: not for the notes
])
def test_questions_about_the_owner(text, owner):
    assert asks_about_owner(text) is owner
    assert mentions_device(text, DEVICES) is ("light" in text)


# ---------------------------------------------------------------- the dialogue
class Replay:
    """Replays what the packaged model wrote (one reply per completion), so the measured
    turn is reproduced exactly; ``tools`` records whether each completion had tools."""

    name, native_tools = "replay", False

    def __init__(self, *replies: str) -> None:
        self.replies, self.tools = list(replies), []

    def stream(self, messages, *, tools, max_tokens, temperature,
               cancelled, text_only=False) -> Iterator[Delta]:
        self.tools.append(tools is not None)
        text = self.replies.pop(0) if self.replies else "Woof!"
        for i in range(0, len(text), 3):
            yield Delta(text=text[i:i + 3])
        yield Delta(finish_reason="stop")

    def count_tokens(self, text: str) -> int:
        return len(text) // 3 + 1


def _turn(text: str, *replies: str, lang: str = "en"):
    log: list[dict] = []
    backend = Replay(*replies)
    d = Dialogue(backend, DialogueConfig(), ConversationMemory(600, 0, len),
                 device_registry(log), [StopHandler()],
                 tool_context=lambda: device_context(DEVICES), log=lambda s: None)
    out: list[str] = []
    r = d.respond(text, lang, lambda: False, out.append)
    assert "".join(out) == r.text
    return r, log, backend


CALL_JSON = json.dumps({"tool": MEASURED.name, "arguments": MEASURED.arguments})


def test_the_measured_turn_moves_nothing_and_apologises_for_nothing():
    r, log, backend = _turn("Li Hao", CALL_JSON, "Hello! Nice to meet you.")
    assert log == [] and r.tool_calls == []
    assert [c["verdict"] for c in r.refused_calls] == ["drop"]
    # the model was told nothing was done and answered the words, without tools
    assert r.text == "Hello! Nice to meet you." and r.route == "llm"
    assert backend.tools == [True, False]
    assert not any(a in r.text for a in APOLOGY)


def test_a_model_that_insists_gets_the_unclear_line_not_an_apology():
    r, log, _ = _turn("living moth", CALL_JSON, CALL_JSON)
    assert log == [] and r.route == "fallback" and r.text == LINES["unclear"]["en"]
    assert len(r.refused_calls) == 2 and not any(a in r.text for a in APOLOGY)
    r, log, _ = _turn("李浩", CALL_JSON, CALL_JSON, lang="zh")
    assert log == [] and r.text == LINES["unclear"]["zh"]


def test_a_device_command_without_the_device_is_asked_back_in_the_users_language():
    call = json.dumps({"tool": "set_power", "arguments": {"device_id": "bedroom_light",
                                                          "on": True}})
    r, log, _ = _turn("turn on the light", call)
    assert log == [] and r.route == "fallback"
    assert r.text == "Which device do you mean: the living room light or the bedroom light?"
    r, log, _ = _turn("帮我把灯打开", call, lang="zh")
    assert log == [] and r.text == "你是想控制哪个设备？客厅灯还是卧室灯？"
    r, log, _ = _turn("turn it off", call)
    assert log == [] and r.text == LINES["which_device"]["en"]


def test_a_real_command_still_moves_the_device():
    call = json.dumps({"tool": "set_power", "arguments": {"device_id": "bedroom_light",
                                                          "on": False}})
    r, log, _ = _turn("Turn off the bedroom light", call, "The bedroom light is off.")
    assert log == [{"service": "set_power", "device_id": "bedroom_light", "on": False}]
    # said from a template (confirm_from_template): no second completion for the model
    assert r.refused_calls == [] and r.text == "Okay, the bedroom light is off."


# ---------------------------------------------------------------- the real model
def _real(backend, log: list[dict], fast_paths=(), retriever=None) -> Dialogue:
    cfg = DialogueConfig(temperature=0.0, turn_timeout_s=120.0, model_languages=("en",))
    return Dialogue(backend, cfg, ConversationMemory(600, 0, backend.count_tokens),
                    device_registry(log), list(fast_paths), retriever,
                    tool_context=lambda: device_context(DEVICES), log=print)


def test_real_model_on_garbage_moves_nothing(backend):
    """Whatever the packaged model makes of these (a call or words, different on other
    CPUs), no device moves and nobody hears about a failed action."""
    refused = 0
    for text, lang in GARBAGE:
        log: list[dict] = []
        r = _real(backend, log).respond(text, lang, lambda: False, lambda p: None)
        print(f"{text!r}: {r.route} {r.text!r} refused={r.refused_calls}")
        assert log == [] and r.tool_calls == [], r
        assert r.route != "intent" and not any(a in r.text for a in APOLOGY), r
        refused += len(r.refused_calls)
    print(f"{refused} invented calls refused")


# ---------------------------------------------------------------- questions, real router
@pytest.fixture
def router(tmp_path, backend):
    """The shipped fast paths (stop, devices, knowledge) and retriever, in-process, on an
    index in tmp_path; ``add(name, text)`` puts a document in it."""
    pytest.importorskip("gamgin_devices")
    pytest.importorskip("gamgin_knowledge")
    log: list[dict] = []
    context = HandlerContext(tools=["set_power", "set_param", "list_devices"], devices=DEVICES)
    opts = {"index_dir": str(tmp_path / "idx"), "builtin_jokes": False}
    knowledge = load_object("gamgin_knowledge.retriever:KnowledgeRetriever", context, **opts)
    paths = [StopHandler(context), load_object("gamgin_devices.fastpath:DeviceFastPath",
                                               context), knowledge]
    d = _real(backend, log, paths, knowledge)

    def add(name: str, text: str) -> None:
        (tmp_path / name).write_text(text, encoding="utf-8")
        knowledge.kb.add([tmp_path / name])

    return d, log, add


VET_EN = "Mochi is our cat. Mochi's vet is Dr. Alvarez at the Pine Street Animal Clinic.\n"
VET_ZH = "Mochi是我们的猫。Mochi的兽医是林医生，在松树街动物医院。\n"


@pytest.mark.parametrize("question, lang, doc, fact", [
    ("Who is Mochi's vet?", "en", ("mochi.md", VET_EN), "Alvarez"),
    ("Mochi的兽医是谁？", "zh", ("宠物.txt", VET_ZH), "林医生"),
])
def test_a_question_about_the_notes_is_answered_from_them(router, question, lang, doc, fact):
    d, log, add = router
    add(*doc)
    r = d.respond(question, lang, lambda: False, lambda p: None)
    assert r.route == "knowledge" and fact in r.text, r
    assert log == [] and (cjk_ratio(r.text) > 0.3) == (lang == "zh"), r


@pytest.mark.parametrize("question, lang", [
    ("Who is Mochi's vet?", "en"), ("Who is Mochi's vet", "en"),
    ("Mochi的兽医是谁？", "zh"), ("谁是Mochi的兽医", "zh"),
])
def test_without_a_document_the_answer_is_an_honest_i_dont_know(router, question, lang):
    d, log, _ = router
    r = d.respond(question, lang, lambda: False, lambda p: None)
    assert r.route == "knowledge" and r.text == LINES["dont_know"][lang], r
    assert log == [] and "device" not in r.text and "设备" not in r.text


def test_what_the_user_told_the_robot_is_not_a_document_question(router):
    d, _, _ = router
    d.memory.add("My name is Ann.", "Nice to meet you, Ann!")
    r = d.respond("What's my name?", "en", lambda: False, lambda p: None)
    assert r.text != LINES["dont_know"]["en"] and r.route != "knowledge", r
