"""Local intents: real hassil + home-assistant-intents + our sentence files."""

from __future__ import annotations

import statistics
import time

import pytest

from gamgin_devices.intents import DeviceIntents

STATE = {"bedroom_ac": {"temperature": 26.0}, "living_room_light": {"brightness": 50.0},
         "bedroom_light": {"brightness": 60.0}, "tv": {"volume": 30.0}, "fan": {"speed": 1.0},
         "water_heater": {"temperature": 50.0}}


@pytest.fixture(scope="module")
def shared():
    return DeviceIntents()


@pytest.fixture
def di(shared):
    shared._pending, shared.last_device = None, ""  # a fresh conversation per test
    return shared


def acts(answer):
    return sorted((a.device_id, a.kind, a.on if a.kind == "power" else a.param, a.value)
                  for a in answer.actions)


@pytest.mark.parametrize("text, lang, expected", [
    ("金坚，把客厅的灯打开", "zh", [("living_room_light", "power", True, None)]),
    ("打开客厅灯", "zh", [("living_room_light", "power", True, None)]),
    ("關掉風扇", "zh", [("fan", "power", False, None)]),  # traditional, as Whisper writes
    ("把卧室空调调到二十六度", "zh", [("bedroom_ac", "param", "temperature", 26.0)]),
    ("空调温度设成二十四度", "zh", [("bedroom_ac", "param", "temperature", 24.0)]),
    ("客厅灯亮度调到百分之三十", "zh", [("living_room_light", "param", "brightness", 30.0)]),
    ("把电视音量调到一半", "zh", [("tv", "param", "volume", 50.0)]),
    ("把风扇调到三档", "zh", [("fan", "param", "speed", 3.0)]),
    ("风扇开到最大", "zh", [("fan", "param", "speed", 3.0)]),
    ("把空调调高两度", "zh", [("bedroom_ac", "param", "temperature", 28.0)]),
    ("空调调低一点", "zh", [("bedroom_ac", "param", "temperature", 25.0)]),
    ("把客厅灯调亮一点", "zh", [("living_room_light", "param", "brightness", 70.0)]),
    ("电视声音调小一点", "zh", [("tv", "param", "volume", 20.0)]),
    ("关闭所有的灯", "zh", [("bedroom_light", "power", False, None),
                       ("living_room_light", "power", False, None)]),
    ("把卧室的灯关了", "zh", [("bedroom_light", "power", False, None)]),
    ("turn on the living room light", "en", [("living_room_light", "power", True, None)]),
    ("Turn off the fan.", "en", [("fan", "power", False, None)]),
    ("set the bedroom ac to 22 degrees", "en", [("bedroom_ac", "param", "temperature", 22.0)]),
    ("turn the fan up", "en", [("fan", "param", "speed", 2.0)]),
    ("turn the tv volume down", "en", [("tv", "param", "volume", 20.0)]),
    ("set the tv volume to half", "en", [("tv", "param", "volume", 50.0)]),
    ("turn off all the lights", "en", [("bedroom_light", "power", False, None),
                                       ("living_room_light", "power", False, None)]),
    ("set the living room light brightness to 40%", "en",
     [("living_room_light", "param", "brightness", 40.0)]),
])
def test_commands_become_actions(di, text, lang, expected):
    answer = di.handle(text, lang, state=STATE)
    assert answer is not None, text
    assert acts(answer) == expected
    assert not answer.question and answer.speech
    assert answer.language == lang


def test_confirmation_is_in_the_users_language(di):
    zh = di.handle("把卧室空调调到二十六度", "zh", state=STATE)
    assert "卧室空调" in zh.speech and "26" in zh.speech
    en = di.handle("set the bedroom ac to 22 degrees", "en", state=STATE)
    assert "22 degrees" in en.speech and en.speech.startswith("OK")


def test_relative_without_state_returns_a_delta(di):
    answer = di.handle("把空调调高两度", "zh")
    (a,) = answer.actions
    assert (a.device_id, a.value, a.delta) == ("bedroom_ac", None, 2.0)
    assert a.resolve(29.0, 16, 30) == 30  # saturates at the top of the range


def test_relative_at_limit_does_nothing(di):
    answer = di.handle("风扇调快一档", "zh", state={**STATE, "fan": {"speed": 3.0}})
    assert answer.actions == () and "3" in answer.speech


def test_out_of_range_is_refused_with_the_range(di):
    answer = di.handle("把空调调到四十度", "zh", state=STATE)
    assert answer.actions == () and "16" in answer.speech and "30" in answer.speech


def test_ambiguous_asks_back_then_completes(di):
    q = di.handle("开灯", "zh", state=STATE)
    assert q.question and q.actions == () and "客厅灯" in q.speech and "卧室灯" in q.speech
    a = di.handle("卧室的", "zh", state=STATE)
    assert acts(a) == [("bedroom_light", "power", True, None)] and a.layer == "context"
    q = di.handle("turn on the light", "en", state=STATE)
    assert q.question and "living room light" in q.speech
    a = di.handle("the bedroom one", "en", state=STATE)
    assert acts(a) == [("bedroom_light", "power", True, None)]


def test_follow_up_uses_the_last_device(di):
    di.handle("把电视音量调到四十", "zh", state=STATE)
    answer = di.handle("再调高一点", "zh", state={**STATE, "tv": {"volume": 40.0}})
    assert acts(answer) == [("tv", "param", "volume", 50.0)]


def test_confirmation_needed_for_listed_devices(di):
    q = di.handle("打开热水器", "zh", state=STATE)
    assert q.question and q.actions == () and "热水器" in q.speech
    yes = di.handle("好的", "zh", state=STATE)
    assert acts(yes) == [("water_heater", "power", True, None)]
    q = di.handle("turn on the water heater", "en", state=STATE)
    assert q.question
    no = di.handle("no", "en", state=STATE)
    assert no.actions == () and no.speech
    assert di.handle("yes", "en", state=STATE) is None  # nothing pending: no action


@pytest.mark.parametrize("text, lang, expected", [
    # Whisper often adds a courtesy it imagined in the silence after speech
    ("Switch on the living room light. Thank you.", "en", ("living_room_light", True)),
    ("So, turn off the fan, thanks for watching!", "en", ("fan", False)),
    ("Okay um turn on the fan please", "en", ("fan", True)),
    ("嗯，把客厅的灯打开吧，谢谢。", "zh", ("living_room_light", True)),
    ("那个关掉风扇好吗", "zh", ("fan", False)),
])
def test_fillers_and_courtesies_around_a_command(di, text, lang, expected):
    assert acts(di.handle(text, lang, state=STATE)) == [(expected[0], "power", expected[1], None)]


@pytest.mark.parametrize("text, lang", [("Thank you.", "en"), ("so", "en"), ("谢谢", "zh"),
                                        ("好吧", "zh"), ("thanks for the weather now", "en")])
def test_fillers_alone_are_not_commands(di, text, lang):
    assert di.handle(text, lang, state=STATE) is None


def test_music_commands(di):
    a = di.handle("放一首周杰伦的歌", "zh")
    assert [(x.kind, x.command, x.query) for x in a.actions] == [("music", "play", "周杰伦")]
    assert di.handle("下一首", "zh").actions[0].command == "next"
    assert di.handle("stop the music", "en").actions[0].command == "stop"
    a = di.handle("play something by Adele", "en")
    assert a.actions[0].query == "adele"


@pytest.mark.parametrize("text, lang", [("今天天气怎么样", "zh"), ("给我讲个笑话", "zh"),
                                        ("what is the capital of france", "en"), ("", "en"),
                                        ("打开客厅灯", "fr")])
def test_other_sentences_are_not_ours(di, text, lang):
    assert di.handle(text, lang, state=STATE) is None


@pytest.mark.parametrize("text, lang", [
    # HA's "who is {state}" (a person's state) matched these and answered "I can't find
    # that device." (measured): questions for the owner's notes, not for the devices
    ("Who is Mochi's vet?", "en"), ("who is the vet", "en"), ("Who is Mochi?", "en"),
    ("Who is home?", "en"), ("What is Mochi's vet called?", "en"),
    ("When is Mochi's next vaccination?", "en"), ("What is the vet's phone number?", "en"),
    ("Where is my passport?", "en"), ("When does my car insurance expire?", "en"),
    ("Is the door locked?", "en"), ("Who turned off the light?", "en"),
    ("Mochi的兽医是谁？", "zh"), ("谁是Mochi的兽医", "zh"), ("兽医的电话是多少", "zh"),
    ("谁在家", "zh"), ("我的护照什么时候过期？", "zh"), ("空调是谁的", "zh"),
    ("谁把灯关了", "zh"), ("门锁了吗", "zh"),
    # unclear transcripts and other languages (Whisper's "Li Hao" for "金坚，你好")
    ("Li Hao", "en"), ("living moth", "en"), ("Bonjour, comment ça va ?", "en"),
    ("Guten Tag, wie geht es dir?", "en"), ("李浩", "zh"), ("こんにちは、元気ですか", "zh"),
])
def test_questions_and_unclear_words_never_take_the_device_path(di, text, lang):
    assert di.handle(text, lang, state=STATE) is None
    assert di.handle(text, lang) is None
    assert di._pending is None  # no question left open either


def test_a_device_verb_without_a_device_still_asks_back(di):
    a = di.handle("开灯", "zh", state=STATE)
    assert a.question and "客厅灯" in a.speech and not a.actions
    assert di.handle("turn on the bathroom light", "en", state=STATE).speech.startswith(
        "I can't find")


def test_layers_each_add_something():
    ha = DeviceIntents(layers=("ha",), warm=False)
    ours = DeviceIntents(layers=("gamgin",), warm=False)
    # HA alone knows absolute settings but not 一半 or relative changes
    assert ha.handle("客厅灯亮度调到百分之三十", "zh", state=STATE) is not None
    assert ha.handle("把电视音量调到一半", "zh", state=STATE) is None
    assert ours.handle("把电视音量调到一半", "zh", state=STATE) is not None
    assert ha.handle("把空调调高两度", "zh", state=STATE) is None


def test_latency_well_under_50ms(di):
    texts = ["把客厅的灯打开", "把卧室空调调到二十六度", "turn the fan up", "今天天气怎么样",
             "set the tv volume to half", "把空调调高两度"]
    times = []
    for _ in range(3):
        for t in texts:
            t0 = time.perf_counter()
            di.handle(t, "en" if t.isascii() else "zh", state=STATE, dry=True)
            times.append(time.perf_counter() - t0)
    assert statistics.median(times) < 0.05, times


def test_bare_parameter_words_mean_the_room_device(di):
    # "the temperature" is the AC's, even though the water heater has one too
    answer = di.handle("set the temperature to 24 degrees", "en", state=STATE)
    assert acts(answer) == [("bedroom_ac", "param", "temperature", 24.0)]
    assert acts(di.handle("太热了", "zh", state=STATE)) == [
        ("bedroom_ac", "param", "temperature", 25.0)]


def test_labelled_set_stays_accurate(tmp_path):
    from gamgin_devices.bench import run

    res = run(repeats=1)
    both = res["configs"]["both"]
    assert both["accuracy"] >= 0.95, [i for i in res["items"] if not i["ok"]]
    # our sentence layer must keep adding what HA's alone misses
    assert res["configs"]["ha"]["accuracy"] < both["accuracy"]


def test_clarified_relative_uses_the_state_of_the_reply(di):
    q = di.handle("亮一点", "zh", state=STATE)
    assert q.question
    later = {**STATE, "living_room_light": {"brightness": 60.0}}  # changed meanwhile
    a = di.handle("客厅的", "zh", state=later)
    assert acts(a) == [("living_room_light", "param", "brightness", 80.0)]


def test_dry_runs_leave_no_question_open(di):
    assert di.handle("开灯", "zh", state=STATE, dry=True).question
    assert di.handle("卧室的", "zh", state=STATE) is None  # nothing was pending


@pytest.mark.parametrize("text, lang, expected", [
    ("把空调调到26.5度", "zh", [("bedroom_ac", "param", "temperature", 26.5)]),
    ("set the ac to 22.5 degrees", "en", [("bedroom_ac", "param", "temperature", 22.5)]),
    ("set the tv volume to 150", "en", [("tv", "param", "volume", 100.0)]),  # clamp configured
    ("把客厅灯亮度调到150", "zh", []),  # refused in words, not ignored
])
def test_decimals_and_out_of_range_numbers(di, text, lang, expected):
    answer = di.handle(text, lang, state=STATE)
    assert answer is not None and acts(answer) == expected
    if not expected:
        assert "100" in answer.speech


def test_state_questions_are_answered_from_state_only(di):
    st = {**STATE, "living_room_light": {"brightness": 50.0, "on": 1.0},
          "fan": {"speed": 2.0, "on": 0.0}}
    assert di.handle("客厅灯开着吗", "zh", state=st).speech == "客厅灯开着。"
    assert di.handle("is the fan on", "en", state=st).speech == "The fan is off."
    assert di.handle("风扇现在几档", "zh", state=st).speech == "风扇风速是2档。"
    a = di.handle("what is the bedroom ac temperature", "en", state=st)
    assert a.speech == "The bedroom air conditioner temperature is 26 degrees." and not a.actions
    # nothing known: no made-up answer, the LLM (with list_devices) takes it
    assert di.handle("客厅灯开着吗", "zh") is None


def test_a_new_command_is_not_bent_into_an_open_question(di):
    assert di.handle("开灯", "zh", state=STATE).question
    a = di.handle("把卧室灯关了", "zh", state=STATE)
    assert acts(a) == [("bedroom_light", "power", False, None)]


def test_clarified_answer_still_needs_confirmation():
    import yaml

    from gamgin_devices.registry import default_registry_path, parse_registry

    raw = yaml.safe_load(default_registry_path().read_text(encoding="utf-8"))
    raw["require_confirmation"] = ["bedroom_light"]
    di = DeviceIntents(parse_registry(raw), warm=False)
    assert di.handle("开灯", "zh", state=STATE).question
    q = di.handle("卧室的", "zh", state=STATE)
    assert q.question and q.actions == () and "卧室灯" in q.speech
    assert acts(di.handle("确定", "zh", state=STATE)) == [("bedroom_light", "power", True, None)]


# ---------------------------------------------------------------- categories of the issue
# "misses phrasings it has not seen": relative changes, numbers in words, more verbs, the
# wake word and fillers, compound requests, "here" (the robot's room), the whole home.
def one(di, text, lang, state=STATE, room=""):
    di.robot_room = room
    try:
        return di.handle(text, lang, state=state)
    finally:
        di.robot_room = ""


@pytest.mark.parametrize("text, lang, expected", [
    ("调高两度", "zh", [("bedroom_ac", "param", "temperature", 28.0)]),  # 度: the temperature
    ("音量小一点", "zh", [("tv", "param", "volume", 20.0)]),  # a bit = the nudge (TV: 10)
    ("风扇快一点", "zh", [("fan", "param", "speed", 2.0)]),
    ("把温度升高一度", "zh", [("bedroom_ac", "param", "temperature", 27.0)]),
    ("音量减小五", "zh", [("tv", "param", "volume", 25.0)]),
    ("把空调温度往上调两度", "zh", [("bedroom_ac", "param", "temperature", 28.0)]),
    # an explicit amount wins over the nudge (light: 20)
    ("把卧室灯调亮百分之十", "zh", [("bedroom_light", "param", "brightness", 70.0)]),
    ("a bit warmer", "en", [("bedroom_ac", "param", "temperature", 27.0)]),
    ("make it cooler", "en", [("bedroom_ac", "param", "temperature", 25.0)]),
    ("turn the volume up by 10", "en", [("tv", "param", "volume", 40.0)]),
    ("turn the volume down a notch", "en", [("tv", "param", "volume", 20.0)]),
    ("speed up the fan", "en", [("fan", "param", "speed", 2.0)]),
    ("raise the temperature by three degrees", "en", [("bedroom_ac", "param", "temperature",
                                                       29.0)]),
])
def test_relative_changes(di, text, lang, expected):
    assert acts(one(di, text, lang)) == expected


def test_a_bit_without_a_device_asks_or_uses_the_robots_room(di):
    assert one(di, "再亮一点", "zh").question
    assert acts(one(di, "再亮一点", "zh", room="bedroom")) == [
        ("bedroom_light", "param", "brightness", 80.0)]


@pytest.mark.parametrize("text, lang, expected", [
    ("把空调调到二十五度", "zh", ("bedroom_ac", "temperature", 25.0)),
    ("卧室灯调到百分之七十", "zh", ("bedroom_light", "brightness", 70.0)),
    ("客厅灯亮度调到一半", "zh", ("living_room_light", "brightness", 50.0)),
    ("音量调到三成", "zh", ("tv", "volume", 30.0)),
    ("电视音量调到四分之一", "zh", ("tv", "volume", 25.0)),
    ("空调调到二十二点五度", "zh", ("bedroom_ac", "temperature", 22.5)),
    ("风扇调到两档", "zh", ("fan", "speed", 2.0)),
    ("电视音量三十", "zh", ("tv", "volume", 30.0)),
    ("set the ac to twenty five degrees", "en", ("bedroom_ac", "temperature", 25.0)),
    ("set the tv volume to thirty percent", "en", ("tv", "volume", 30.0)),
    ("set the living room light to half", "en", ("living_room_light", "brightness", 50.0)),
    ("set the volume to a quarter", "en", ("tv", "volume", 25.0)),
    ("set the ac to twenty two point five degrees", "en", ("bedroom_ac", "temperature", 22.5)),
    ("put the bedroom light at forty percent", "en", ("bedroom_light", "brightness", 40.0)),
])
def test_numbers_in_words(di, text, lang, expected):
    dev, param, value = expected
    assert acts(one(di, text, lang)) == [(dev, "param", param, value)]


@pytest.mark.parametrize("text, lang, expected", [
    ("把客厅灯调暗", "zh", ("living_room_light", "brightness", 30.0)),
    ("调亮卧室灯", "zh", ("bedroom_light", "brightness", 80.0)),
    ("电视静音", "zh", ("tv", "volume", 0.0)),
    ("静音", "zh", ("tv", "volume", 0.0)),  # HA's sentence, with the robot's area context
    ("把音量调小", "zh", ("tv", "volume", 20.0)),
    ("调大音量", "zh", ("tv", "volume", 40.0)),
    ("把电视声音开大", "zh", ("tv", "volume", 40.0)),
    ("电视声音关小一点", "zh", ("tv", "volume", 20.0)),
    ("dim the living room light", "en", ("living_room_light", "brightness", 30.0)),
    ("brighten the bedroom light", "en", ("bedroom_light", "brightness", 80.0)),
    ("mute the tv", "en", ("tv", "volume", 0.0)),
    ("crank up the volume", "en", ("tv", "volume", 40.0)),
    ("crank the fan up", "en", ("fan", "speed", 2.0)),
    ("lower the volume", "en", ("tv", "volume", 20.0)),
    ("raise the temperature", "en", ("bedroom_ac", "temperature", 27.0)),
])
def test_verbs_beyond_on_off_set(di, text, lang, expected):
    dev, param, value = expected
    assert acts(one(di, text, lang)) == [(dev, "param", param, value)]


@pytest.mark.parametrize("text, lang, expected", [
    ("金坚，打开电视", "zh", ("tv", True)),
    ("金坚 把风扇关了", "zh", ("fan", False)),
    ("金坚金坚，打开客厅灯", "zh", ("living_room_light", True)),
    ("嗯，金坚，帮我把电视关一下吧", "zh", ("tv", False)),
    ("能不能帮我把客厅灯打开", "zh", ("living_room_light", True)),
    ("金坚，能帮我打开风扇吗", "zh", ("fan", True)),
    ("你可以把电视打开吗", "zh", ("tv", True)),
    ("嗯……那个……把卧室灯关了吧", "zh", ("bedroom_light", False)),
    ("麻烦你把电视打开一下", "zh", ("tv", True)),
    ("hey 金坚, 把风扇打开", "zh", ("fan", True)),
    ("Jinjian, turn on the TV", "en", ("tv", True)),
    ("hey 金坚, turn off the tv", "en", ("tv", False)),
    ("Jin Jian, please turn off the fan", "en", ("fan", False)),
    ("um, turn on the bedroom light, please", "en", ("bedroom_light", True)),
    ("would you mind turning on the fan", "en", ("fan", True)),
])
def test_wake_word_names_and_fillers(di, text, lang, expected):
    assert acts(one(di, text, lang)) == [(expected[0], "power", expected[1], None)]


@pytest.mark.parametrize("text, lang", [
    ("Jinjian, how are you today", "en"), ("金坚，你好", "zh"), ("金坚", "zh"),
    ("louder", "en"), ("quieter please", "en"), ("小声点", "zh"),  # the robot's own voice?
    ("the fan", "en"), ("the tv", "en"),  # a name alone is no "turn on" (HA's would be)
    ("我把灯关了", "zh"), ("明天把空调打开", "zh"), ("别关灯", "zh"), ("不要打开电视", "zh"),
    ("don't turn on the tv", "en"), ("how do I turn on the tv", "en"),
    ("I turned off the fan", "en"), ("取消静音", "zh"), ("unmute the tv", "en"),
    ("今天热不热", "zh"), ("静音是什么意思", "zh"), ("what does mute mean", "en"),
    ("how do I make the room cooler", "en"), ("half of the people like it warmer", "en"),
])
def test_not_commands_stay_not_commands(di, text, lang):
    assert one(di, text, lang) is None
    assert di._pending is None


@pytest.mark.parametrize("text, lang, expected", [
    ("关掉风扇然后打开电视", "zh", [("fan", "power", False, None), ("tv", "power", True, None)]),
    ("turn off the fan and turn on the TV", "en", [("fan", "power", False, None),
                                                   ("tv", "power", True, None)]),
    ("打开客厅灯，把空调调到二十五度", "zh", [("bedroom_ac", "param", "temperature", 25.0),
                                  ("living_room_light", "power", True, None)]),
    # one verb, two devices
    ("关掉电视和风扇", "zh", [("fan", "power", False, None), ("tv", "power", False, None)]),
    ("把风扇和电视都打开", "zh", [("fan", "power", True, None), ("tv", "power", True, None)]),
    ("turn off the tv and the fan", "en", [("fan", "power", False, None),
                                           ("tv", "power", False, None)]),
    ("turn on the lights in the living room and the bedroom", "en",
     [("bedroom_light", "power", True, None), ("living_room_light", "power", True, None)]),
    # the second command is about the device of the first
    ("打开卧室灯，调到百分之五十", "zh", [("bedroom_light", "param", "brightness", 50.0),
                                ("bedroom_light", "power", True, None)]),
    ("turn on the bedroom light and dim it", "en",
     [("bedroom_light", "param", "brightness", 40.0), ("bedroom_light", "power", True, None)]),
])
def test_two_commands_in_one_sentence(di, text, lang, expected):
    a = one(di, text, lang)
    assert acts(a) == expected and not a.rest and not a.question
    assert a.speech.count("好的") <= 1 and a.speech.count("OK") <= 1  # one "OK" for all


@pytest.mark.parametrize("text, lang, room, expected, rest", [
    ("turn off the fan and tell me a short joke", "en", "", [("fan", "power", False, None)],
     "tell me a short joke"),
    ("把灯关了，再给我讲个笑话", "zh", "bedroom", [("bedroom_light", "power", False, None)],
     "给我讲个笑话"),
    ("what's the weather like today and turn on the fan", "en", "",
     [("fan", "power", True, None)], "what's the weather like today"),
])
def test_a_command_and_something_else(di, text, lang, room, expected, rest):
    a = one(di, text, lang, room=room)
    assert acts(a) == expected and a.rest == rest
    assert a.speech and rest not in a.speech


@pytest.mark.parametrize("text, lang", [
    ("tell me a joke and then tell me the time", "en"),  # no device at all
    ("我喜欢客厅的灯和卧室的空调", "zh"),
    ("turn off the fan, no wait, turn on the tv", "en"),  # the rest may take it back
    ("关掉风扇，不对，打开电视", "zh"),
])
def test_compound_never_guesses(di, text, lang):
    assert one(di, text, lang) is None


def test_compound_relative_changes_chain(di):
    # two changes of one parameter: the second starts from the first, only the last is sent
    a = one(di, "把空调调高两度，再调高一度", "zh")
    assert acts(a) == [("bedroom_ac", "param", "temperature", 29.0)]


def test_compound_with_an_ambiguous_part_acts_on_the_rest_and_asks(di):
    a = one(di, "关灯并且关电视", "zh")
    assert a.question and acts(a) == [("tv", "power", False, None)]
    assert "客厅灯" in a.speech and "卧室灯" in a.speech
    b = di.handle("卧室的", "zh", state=STATE)  # the question is still open
    assert acts(b) == [("bedroom_light", "power", False, None)]


@pytest.mark.parametrize("text, lang, room, expected", [
    ("开灯", "zh", "living_room", [("living_room_light", "power", True, None)]),
    ("turn on the lights", "en", "living_room", [("living_room_light", "power", True, None)]),
    ("关灯", "zh", "bedroom", [("bedroom_light", "power", False, None)]),
    ("把这里的灯调暗", "zh", "bedroom", [("bedroom_light", "param", "brightness", 40.0)]),
    ("set the brightness to 50%", "en", "bedroom", [("bedroom_light", "param", "brightness",
                                                      50.0)]),
    ("dim the lights", "en", "living_room", [("living_room_light", "param", "brightness",
                                              30.0)]),
    ("这里的温度调到二十四度", "zh", "bedroom", [("bedroom_ac", "param", "temperature", 24.0)]),
    ("make it brighter in here", "en", "bedroom", [("bedroom_light", "param", "brightness",
                                                     80.0)]),
    # a room named, or a device that exists once, wins over the robot's room
    ("turn off the lights in the bedroom", "en", "living_room",
     [("bedroom_light", "power", False, None)]),
    ("把空调打开", "zh", "living_room", [("bedroom_ac", "power", True, None)]),
])
def test_here_is_the_robots_room(di, text, lang, room, expected):
    assert acts(one(di, text, lang, room=room)) == expected


def test_here_without_a_known_room_asks_back(di):
    for text, lang in (("把这里的灯调暗", "zh"), ("开灯", "zh"),
                       ("set the brightness to 50%", "en"), ("turn on the lights", "en")):
        a = one(di, text, lang)
        assert a.question and not a.actions, text
    # a room without such a device: ask among the others, do nothing
    assert one(di, "开灯", "zh", room="bathroom").question
    # "here" said out loud, but the only TV is elsewhere: not found, nothing done
    a = one(di, "turn on the tv in here", "en", room="bedroom")
    assert not a.actions and not a.question and a.speech.startswith("I can't find")


def test_robot_room_from_config_and_at_run_time():
    import yaml

    from gamgin_devices.registry import RegistryError, default_registry_path, parse_registry

    raw = yaml.safe_load(default_registry_path().read_text(encoding="utf-8"))
    assert raw["robot_room"] == ""  # the shipped default: unknown
    raw["robot_room"] = "卧室"  # an id, a name or an alias
    di = DeviceIntents(parse_registry(raw), warm=False)
    assert di.robot_room == "bedroom"
    assert acts(di.handle("关灯", "zh", state=STATE)) == [("bedroom_light", "power", False, None)]
    assert di.set_robot_room("living room") == "living_room"  # what robot/room does
    assert acts(di.handle("关灯", "zh", state=STATE)) == [
        ("living_room_light", "power", False, None)]
    assert di.set_robot_room("garage") == "" and di.handle("关灯", "zh", state=STATE).question
    raw["robot_room"] = "garage"
    with pytest.raises(RegistryError, match="robot_room"):
        parse_registry(raw)


@pytest.mark.parametrize("text, lang, room, expected", [
    ("关掉家里所有的灯", "zh", "", False), ("全屋的灯都打开", "zh", "", True),
    ("把家里的灯全部关掉", "zh", "", False), ("所有灯都关掉", "zh", "", False),
    ("turn off all the lights in the house", "en", "", False),
    ("turn on every light in the house", "en", "", True),
    ("lights off everywhere", "en", "", False), ("all lights off", "en", "", False),
    ("turn on all the lights", "en", "bedroom", True),  # "all" beats the robot's room
])
def test_the_whole_home(di, text, lang, room, expected):
    assert acts(one(di, text, lang, room=room)) == [("bedroom_light", "power", expected, None),
                                                   ("living_room_light", "power", expected,
                                                    None)]


def test_everything_is_read_back_first(di):
    # every device includes the water heater, which needs a spoken yes
    for text, lang in (("turn off everything in the house", "en"), ("把家里的电器全部关掉", "zh")):
        q = one(di, text, lang)
        assert q.question and not q.actions
        assert ("热水器" if lang == "zh" else "water heater") in q.speech
    yes = di.handle("确定", "zh", state=STATE)
    assert {a.device_id for a in yes.actions} == set(di.registry.devices)
    assert all(a.kind == "power" and a.on is False for a in yes.actions)


def test_all_lights_relative_and_values(di):
    assert acts(one(di, "把所有的灯调暗一点", "zh")) == [
        ("bedroom_light", "param", "brightness", 40.0),
        ("living_room_light", "param", "brightness", 30.0)]
    assert acts(one(di, "set all the lights to 50 percent", "en")) == [
        ("bedroom_light", "param", "brightness", 50.0),
        ("living_room_light", "param", "brightness", 50.0)]


def test_dry_runs_hold_confirmations_but_keep_nothing(di):
    a = di.handle("打开热水器", "zh", state=STATE, dry=True)
    assert a.question and not a.actions and di._pending is None


@pytest.mark.parametrize("text, lang, room, expected", [
    ("风扇调到中档", "zh", "", [("fan", "param", "speed", 2.0)]),
    ("set the fan to high", "en", "", [("fan", "param", "speed", 3.0)]),
    ("温度设为25℃", "zh", "", [("bedroom_ac", "param", "temperature", 25.0)]),
    ("set the ac to 23°C", "en", "", [("bedroom_ac", "param", "temperature", 23.0)]),
    ("调到二十五度", "zh", "", [("bedroom_ac", "param", "temperature", 25.0)]),  # 度: the AC
    ("熄灯", "zh", "bedroom", [("bedroom_light", "power", False, None)]),
    ("lights out", "en", "bedroom", [("bedroom_light", "power", False, None)]),
    ("把风扇停了", "zh", "", [("fan", "power", False, None)]),
    ("stop the fan", "en", "", [("fan", "power", False, None)]),
    ("power on the tv", "en", "", [("tv", "power", True, None)]),
    ("two degrees warmer", "en", "", [("bedroom_ac", "param", "temperature", 28.0)]),
    # HA's context sentence takes "所有" as this room's; "all" means the whole home
    ("打开所有的灯", "zh", "bedroom", [("bedroom_light", "power", True, None),
                                   ("living_room_light", "power", True, None)]),
    ("把客厅和卧室的灯都关了", "zh", "", [("bedroom_light", "power", False, None),
                                   ("living_room_light", "power", False, None)]),
    ("turn off the living room and bedroom lights", "en", "",
     [("bedroom_light", "power", False, None), ("living_room_light", "power", False, None)]),
    ("把风扇关了然后把电视也关了", "zh", "", [("fan", "power", False, None),
                                     ("tv", "power", False, None)]),
])
def test_second_round_phrasings(di, text, lang, room, expected):
    assert acts(one(di, text, lang, room=room)) == expected


@pytest.mark.parametrize("text, lang", [
    ("if it's too hot, turn on the fan", "en"), ("turn off the lights, when I leave", "en"),
    ("五分钟之后，关灯", "zh"), ("关灯，等我睡着以后", "zh"),
])
def test_deferred_or_conditional_requests_are_not_done_now(di, text, lang):
    assert one(di, text, lang, room="bedroom") is None


@pytest.mark.parametrize("text, lang, expected", [
    # a complaint and the change it asks for are one change, not two
    ("太冷了，调高一点", "zh", [("bedroom_ac", "param", "temperature", 27.0)]),
    ("it is cold, turn it up a bit", "en", [("bedroom_ac", "param", "temperature", 27.0)]),
    ("太冷了，调高两度", "zh", [("bedroom_ac", "param", "temperature", 28.0)]),
    # a short piece with no device is about the device just spoken of
    ("声音太小了，大一点", "zh", [("tv", "param", "volume", 40.0)]),
    ("turn on the fan and set it to level two", "en", [("fan", "param", "speed", 2.0),
                                                       ("fan", "power", True, None)]),
    # numbers that look like two clauses
    ("空调温度调到二十三度半", "zh", [("bedroom_ac", "param", "temperature", 23.5)]),
    ("set the ac to nineteen and a half degrees", "en", [("bedroom_ac", "param", "temperature",
                                                          19.5)]),
    # Whisper writes digits: the "." of 24.5 must not end a clause (it set 24)
    ("air conditioner at 24 and a half", "en", [("bedroom_ac", "param", "temperature", 24.5)]),
    ("把空调温度调高一点点", "zh", [("bedroom_ac", "param", "temperature", 27.0)]),
])
def test_third_round_phrasings(di, text, lang, expected):
    a = one(di, text, lang)
    assert acts(a) == expected and not a.rest


def test_contradictory_compound_is_not_guessed(di):
    assert one(di, "打开电视，关了", "zh") is None


@pytest.mark.parametrize("text, lang, room, expected", [
    # a song's name (a wildcard) never swallows the device command after it
    ("play something by adele and turn off the fan", "en", "",
     [("fan", "power", False, None), ("music", "music", "play", None)]),
    ("放一首周杰伦的歌然后关灯", "zh", "bedroom",
     [("bedroom_light", "power", False, None), ("music", "music", "play", None)]),
    ("关掉风扇，打开电视，再把空调调到二十五度，然后放首歌，再把灯关了，最后讲个笑话", "zh",
     "bedroom",
     [("bedroom_ac", "param", "temperature", 25.0), ("bedroom_light", "power", False, None),
      ("fan", "power", False, None), ("music", "music", "play", None),
      ("tv", "power", True, None)]),
])
def test_song_names_do_not_swallow_commands(di, text, lang, room, expected):
    a = one(di, text, lang, room=room)
    got = sorted((x.device_id, x.kind, x.on if x.kind == "power" else (x.command or x.param),
                  x.value) for x in a.actions)
    assert got == expected
    assert all(x.query in ("", "adele", "周杰伦") for x in a.actions if x.kind == "music")


def test_song_names_with_and_stay_songs(di):
    assert [x.query for x in one(di, "play rock and roll", "en").actions] == ["rock and roll"]
    a = one(di, "我想听周杰伦和蔡依林的歌", "zh")
    assert [x.query for x in a.actions] == ["周杰伦和蔡依林的歌"]
