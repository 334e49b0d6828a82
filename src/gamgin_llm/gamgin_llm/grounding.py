"""What the user's own words support, checked before the robot acts or answers on the
model's word. Pure Python.

A small model turns an unclear transcript into a confident tool call: "金坚，你好" heard as
"Li Hao" became ``set_param(bedroom_light, "living-moth", 10)``, and nothing in the call
itself shows that it was invented. So a call that moves something runs only when

- the user's words ask for an action (a device verb, not a question), and
- they name the device (its id, name, alias or room, zh or en, tolerantly: word order,
  plurals, "的"), or it is the only device their words fit ("the volume": the tv), and
- the parameter exists on that device, and
- the call does what the words ask: on for "turn on", off for "关掉", a higher value for
  "调高"/"warmer"/"太冷了" (when the current value is known), nothing for words that tell of
  the past, take the command back or put it off ("I turned on the fan this morning",
  "不要关灯", "明天把空调打开").

Otherwise the call is asked about ("Which device do you mean?") when the words do ask for
a device action, and dropped without a word about it when they do not.

Also here: ``asks_about_owner`` ("Who is Mochi's vet?", "我的护照什么时候过期？"), a
question whose answer can only come from the owner's own notes, never from the model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gamgin_llm.chat import ToolCall
from gamgin_llm.language import is_cjk

Devices = Mapping[str, Mapping[str, Any]]  # id -> name_en, name_zh, aliases, room, type, params

# the kind of thing a word names: "turn on the light" fits every light
_TYPE_WORDS: dict[str, tuple[str, ...]] = {
    "light": ("light", "lamp", "灯"),
    "climate": ("ac", "air conditioner", "air conditioning", "aircon", "空调", "冷气", "暖气"),
    "fan": ("fan", "风扇", "电扇"),
    "media_player": ("tv", "television", "telly", "电视"),
    "water_heater": ("water heater", "boiler", "热水器"),
    "switch": ("plug", "socket", "插座"),
}
# words that point at a parameter: "the volume" fits the one device that has a volume
_PARAM_WORDS: dict[str, tuple[str, ...]] = {
    "brightness": ("brightness", "bright", "brighter", "dim", "dimmer", "dark", "darker",
                   "亮度", "亮", "暗"),
    "temperature": ("temperature", "temp", "degree", "warm", "warmer", "cool", "cooler",
                    "cold", "colder", "hot", "hotter", "温度", "度", "冷", "热"),
    "volume": ("volume", "loud", "louder", "quiet", "quieter", "sound", "音量", "声音"),
    "speed": ("speed", "风速", "档"),
}
# the kind of device a parameter word means when no device is named (as the grammar has it)
_PARAM_OWNER = {"brightness": "light", "temperature": "climate", "volume": "media_player",
                "speed": "fan"}
_MUSIC_WORDS = re.compile(r"\b(?:music|songs?|tracks?|play|playing|album|radio|tunes?)\b|"
                          r"音乐|歌|播放|曲")

# A question asks, it does not command ("is the light on?", "how do I turn on the tv?");
# "can you ..." / "能不能..." are polite commands and are not listed.
_FILLER_EN = r"(?:(?:hey|hi|so|ok|okay|jinjian|and|but|well|um|uh|oh)\b[\s,]*)*"
_QUESTION_EN = re.compile(_FILLER_EN + r"(?:is|are|was|were|am|what|whats|who|whos|whom|"
                          r"whose|when|where|why|how|which|does|do|did|has|have|had)\b")
_QUESTION_ZH = re.compile(r"谁|什么|哪|为什么|怎么|多少|几点|是不是|有没有|[开关]着")
# verbs that command a device by themselves ("turn it off", "把它打开") ...
_VERB_EN = re.compile(r"\b(?:turn|switch|set|dim|brighten|raise|lower|increase|decrease|"
                      r"reduce|boost|adjust|mute|unmute|crank)\b")
_VERB_ZH = re.compile(r"打开|关掉|关上|关闭|开启|启动|停止|停掉|(?<!空)调|设置|设成|设为|设到|把|"
                      r"开到|开大|开小|(?<![离公分相海])[开关](?![着心始学会门口于系注])")
# ... and words that do only next to a device ("lights off", "start the fan")
_SOFT_EN = re.compile(r"\b(?:on|off|up|down|start|stop|open|close|shut|make|put|change|kill"
                      r"|out)\b")


@dataclass(frozen=True)
class Verdict:
    action: str  # "run": execute it; "ask": ask which device; "drop": not asked for, skip
    reason: str  # for the log and TurnResult.detail
    options: tuple[str, ...] = ()  # "ask": device ids to offer
    param_of: str = ""  # "ask" about the parameter of this device (it has no such one)
    call: ToolCall | None = None  # "run": the call to execute (a repaired parameter name)


@dataclass(frozen=True)
class Words:
    """An utterance as the matchers see it: folded latin words and the CJK characters."""

    en: frozenset[str]
    zh: str  # ideographs only, without 的 ("客厅的灯" names 客厅灯)

    @classmethod
    def of(cls, text: str) -> Words:
        low = text.lower().replace("’", "'").replace("'s", " ")
        en = frozenset(_fold(w) for w in re.findall(r"[a-z0-9]+", low))
        return cls(en, "".join(c for c in text if is_cjk(c)).replace("的", ""))

    def say(self, phrase: str) -> bool:
        """Do the words contain this name? Latin words in any order, CJK as a run (or
        room + type apart: "卧室里的空调" names 卧室空调)."""
        p = phrase.lower().replace("_", " ")
        latin = [_fold(w) for w in re.findall(r"[a-z0-9]+", p)]
        cjk = "".join(c for c in p if is_cjk(c)).replace("的", "")
        if not latin and not cjk:
            return False
        if cjk and cjk not in self.zh and not self._split(cjk):
            return False
        return all(w in self.en for w in latin)

    def _split(self, cjk: str) -> bool:
        for words in _TYPE_WORDS.values():
            for t in words:
                head = cjk[:-len(t)] if cjk.endswith(t) and len(cjk) > len(t) else ""
                if head and head in self.zh and t in self.zh[self.zh.index(head) + len(head):]:
                    return True
        return False


def _fold(word: str) -> str:
    """Plurals fold to the singular ("lights" names the light), enough for device words."""
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _names(dev_id: str, info: Mapping[str, Any]) -> list[str]:
    return [dev_id, str(info.get("name_en") or ""), str(info.get("name_zh") or ""),
            *(str(a) for a in info.get("aliases") or ())]


def _params(info: Mapping[str, Any]) -> list[str]:
    return [p["name"] if isinstance(p, Mapping) else str(p) for p in info.get("params") or ()]


def named_devices(words: Words, devices: Devices) -> set[str]:
    """Devices the words name by id, name or alias."""
    return {i for i, info in devices.items() if any(words.say(n) for n in _names(i, info) if n)}


def fitting_devices(words: Words, devices: Devices) -> tuple[set[str], bool]:
    """Devices the words fit by kind, parameter and room ("the bedroom light", "the
    volume"), and whether the words mention any such thing at all."""
    types = {t for t, ws in _TYPE_WORDS.items() if any(words.say(w) for w in ws)}
    params = {p for p, ws in _PARAM_WORDS.items() if any(words.say(w) for w in ws)}
    rooms = {str(d.get("room")) for d in devices.values()
             if d.get("room") and words.say(str(d["room"]))}
    if not (types or params or rooms):
        return (set(devices) if len(devices) == 1 else set()), False
    fit = {i for i, d in devices.items()
           if (not types or d.get("type") in types)
           and (not params or params & set(_params(d)))
           and (not rooms or d.get("room") in rooms)}
    if not types and len(fit) > 1:  # "a bit warmer": the air, not the water heater
        owners = {i for i in fit if devices[i].get("type") in {_PARAM_OWNER.get(p) for p in params}}
        fit = owners or fit
    return fit, True


def is_question(text: str) -> bool:
    low = text.lower().replace("’", "").replace("'", "").strip()
    return bool(_QUESTION_EN.match(low) or _QUESTION_ZH.search(text))


# a report, not a request: "the tv is on", "电视开了", "灯已经关着"
_STATEMENT_EN = re.compile(r"\b(?:is|are|was|were|'s)\s+(?:already\s+|still\s+)?(?:on|off)\b")
_STATEMENT_ZH = re.compile(r"^[^把将请帮给让]*(?:已经)?[开关](?:了|着)[。！!.]?$")


def wants_action(text: str, mentions_device: bool) -> bool:
    """Do the words ask for something to be done to a device? Questions and reports
    never do."""
    if is_question(text) or _STATEMENT_EN.search(text.lower().replace("’", "'")):
        return False
    if _STATEMENT_ZH.search(text.strip()):
        return False
    low = text.lower()
    if _VERB_EN.search(low) or _VERB_ZH.search(text):
        return True
    return mentions_device and bool(_SOFT_EN.search(low))


# "all the lights", "家里所有的灯": every device the words fit; "here", "这里": the robot's room
_ALL = re.compile(r"\b(?:all(?! the way)|every|everywhere)\b|所有|全部|全屋|家里|每个")
_HERE = re.compile(r"\b(?:here|this room)\b|这里|这儿|这边|这个房间|这间|这屋|屋里|房间里")
# words that tell of the past, take the command back or put it off: not a command for now
_NOT_NOW_EN = re.compile(
    r"\b(?:don'?t|do not|never|not yet|no need|stop asking|yesterday|last night|this morning"
    r"|earlier|already|forgot|forget|turned|switched|tomorrow|tonight|later|after|before|if"
    r"|when|unless|until|minutes?|hours?|o'?clock)\b")
_NOT_NOW_ZH = re.compile(
    r"不要|别|不用|甭|先不|没有|昨天|前天|刚才|刚刚|以前|上次|已经|忘了|明天|明早|今晚|待会|一会"
    r"|等会|分钟|小时|点钟|以后|之后|如果|要是|的话|定时"
    r"|(?<![帮给替让请])(?:我|他|她|我们|他们|她们|妈妈|爸爸)(?:刚才|刚刚|已经|都|也)?把")


def not_now(text: str) -> bool:
    """Words that tell of the past, take a command back or put it off."""
    low = text.lower().replace("’", "'")
    return bool(_NOT_NOW_EN.search(low) or _NOT_NOW_ZH.search(text))


def check_device_call(call: ToolCall, text: str, devices: Devices,
                      robot_room: str = "") -> Verdict:
    """May this call (with a ``device_id``) run on these words? ``robot_room``: the room
    "here" means ("" = unknown: "here" then resolves nothing)."""
    dev = str(call.arguments.get("device_id", ""))
    words = Words.of(text)
    named = named_devices(words, devices)
    fit, mentioned = fitting_devices(words, devices)
    if not wants_action(text, bool(named) or mentioned):
        return Verdict("drop", f"{call.name}({dev}): the user's words ask for no device action")
    if not_now(text):
        return Verdict("drop", f"{call.name}({dev}): the words tell of the past, take the "
                               "command back or put it off")
    low = text.lower()
    if not named and dev in fit and len(fit) > 1:
        if _ALL.search(low) and mentioned:  # "all the lights": each one of them
            fit = {dev}
        elif robot_room and _HERE.search(low):  # "the light here": the robot's room's
            fit = {i for i in fit if devices[i].get("room") == robot_room} or fit
    if dev in named or (not named and fit == {dev}):
        wrong = _wrong_direction(call, dev, devices, text)
        if wrong:
            return Verdict("drop", f"{call.name}({dev}): {wrong}")
        return _check_param(call, dev, devices.get(dev, {}), text)
    options = named or fit or set(devices)
    return Verdict("ask", f"{call.name}({dev}): the user's words do not name {dev!r}",
                   tuple(i for i in devices if i in options))  # in the registry's order


_BARE = r"(?<![离公分相海]){}(?![着心始学会门口于系注])"  # as in _VERB_ZH: not 开心, 关于
_POWER_ON = re.compile(r"\bon\b|打开|开启|启动|" + _BARE.format("开"))
_POWER_OFF = re.compile(r"\boff\b|关掉|关上|关闭|停止|停掉|" + _BARE.format("关"))


_POWER_ON_MORE = re.compile(r"\bstart\b")
_POWER_OFF_MORE = re.compile(r"\b(?:stop|kill|shut|out)\b|熄|灭|停")


def power_words(text: str) -> bool | None:
    """On (True) or off (False) when the words say one of them, and only one."""
    low = text.lower()
    on, off = bool(_POWER_ON.search(low)), bool(_POWER_OFF.search(low))
    return on if on != off else None


def _power_asked(text: str) -> bool | None:
    """power_words, with the rarer verbs ("start the fan", "kill the tv", "熄灯")."""
    low = text.lower()
    on = bool(_POWER_ON.search(low) or _POWER_ON_MORE.search(low))
    off = bool(_POWER_OFF.search(low) or _POWER_OFF_MORE.search(low))
    return on if on != off else None


# where a sentence of two commands splits ("关掉风扇然后打开电视", "turn off the fan and ...")
_CLAUSE = re.compile(r"[,.;!?，。；！？]|\b(?:and|then|also|but)\b|然后|接着|再|还有|并且|和|跟")
# the way a change goes. Comparatives and verbs say it ("warmer", "调高", "开大"); a bare
# adjective after "too"/"太" is a complaint and asks for the opposite ("太热了", "too bright")
_UP_EN = re.compile(r"\b(?:up|raise|increase|higher|louder|brighter|brighten|warmer|hotter"
                    r"|faster|boost|crank|more|max|maximum|full)\b")
_DOWN_EN = re.compile(r"\b(?:down|lower|decrease|reduce|dimmer|darker|quieter|softer|cooler"
                      r"|colder|slower|less|min|minimum)\b|\bdim\b(?! enough)")
_COMPLAIN_UP_EN = re.compile(r"\b(?:too|so|very|a bit|a little|i'?m|it'?s) (?:cold|chilly|dark"
                             r"|dim|quiet)\b|\bfreezing\b")
_COMPLAIN_DOWN_EN = re.compile(r"\b(?:too|so|very|a bit|a little|i'?m|it'?s) (?:hot|warm|bright"
                               r"|loud|noisy)\b|\b(?:boiling|sweating)\b")
# a value said: a number (digits, 二十六, twenty), a part or a level ("一半", "half", "high")
_VALUE = re.compile(r"\d|[零一二两三四五六七八九十百半档成]|\b(?:one|two|three|four|five|six|seven"
                    r"|eight|nine|ten|eleven|twelve|\w+teen|twenty|thirty|forty|fifty|sixty"
                    r"|seventy|eighty|ninety|hundred|half|quarter|third|low|medium|mid|high"
                    r"|level|percent|degrees?)\b")
_UP_ZH = "高大亮快强加升提暖响热"
_DOWN_ZH = "低小暗慢弱减降凉冷轻"
_COMPLAINT_ZH = "太好有点有些这么真"


def direction_words(text: str, names: list[str]) -> int:
    """+1 (up) or -1 (down) when the words ask for one way only, else 0. ``names``: the
    device and room names, taken out first (大灯, 大厅, 热水器, 冷气 say no direction)."""
    low = text.lower().replace("’", "'")
    zh = text
    for n in sorted((n for n in names if n), key=len, reverse=True):
        zh = zh.replace(n, " ")
    ups = downs = 0
    for m in re.finditer(f"[{_UP_ZH}{_DOWN_ZH}]", zh):
        up = m.group() in _UP_ZH
        if m.start() > 0 and zh[m.start() - 1] in _COMPLAINT_ZH:
            up = not up  # 太热 -> cooler, 好冷 -> warmer, 声音太小 -> louder
        ups, downs = ups + up, downs + (not up)
    up_en = bool(_UP_EN.search(low) or _COMPLAIN_UP_EN.search(low))
    down_en = bool(_DOWN_EN.search(low) or _COMPLAIN_DOWN_EN.search(low))
    ups, downs = ups + up_en, downs + down_en
    return 1 if ups and not downs else -1 if downs and not ups else 0


def _wrong_direction(call: ToolCall, dev: str, devices: Devices, text: str) -> str:
    """Why the call does the opposite of what the words ask ("" when it does not):
    off for "turn on", on for "关掉", down for "调高" / "I'm cold"."""
    info = devices.get(dev, {})
    if call.name == "set_power" and "on" in call.arguments:
        clauses = [c for c in _CLAUSE.split(text) if c and c.strip()]
        about = [c for c in clauses if named_devices(Words.of(c), {dev: info})
                 or dev in fitting_devices(Words.of(c), {dev: info})[0]]
        asked = _power_asked(" ".join(about)) if about else None
        if asked is None:
            asked = _power_asked(text)
        if asked is None:
            return "the words ask neither to turn it on nor off"
        return "" if bool(call.arguments["on"]) == asked else (
            f"the words ask to turn it {'on' if asked else 'off'}")
    if call.name != "set_param" or not _params(info):
        return ""  # no parameters: _check_param makes it the power call the words say
    room = str(info.get("room") or "")
    names = [*_names(dev, info), room, room.replace("_", " ")]
    for other_id, other in devices.items():  # every device and room name said, not only this one
        names += [*_names(other_id, other), str(other.get("room") or "")]
    way = direction_words(text, names)
    words = Words.of(text)
    if not (way or _VALUE.search(text.lower()) or any(
            words.say(w) for ws in _PARAM_WORDS.values() for w in ws)):
        return "the words ask for no value"  # "电视开了" -> volume 50 was invented
    values = info.get("values") or {}
    name, value = call.arguments.get("name"), call.arguments.get("value")
    if name not in values or not isinstance(value, (int, float)):
        return ""
    now = float(values[name])
    if (way > 0 and float(value) < now) or (way < 0 and float(value) > now):
        want = "up" if way > 0 else "down"
        return f"{name} {now:g} -> {float(value):g}; the words ask for {want}"
    return ""


def _check_param(call: ToolCall, dev: str, info: Mapping[str, Any], text: str = "") -> Verdict:
    """The parameter must exist on the device. A device with one parameter has only one
    thing "set it to 10" can mean, so a wrong name there is repaired, not refused; a
    parameter on a device that has none, with words that say on or off, was a power call
    (Qwen2.5-0.5B: "请把卧室风扇打开" -> set_param(bedroom_fan, brightness, 100))."""
    params = _params(info)
    name = call.arguments.get("name")
    if "name" in call.arguments and not params and info:
        on = power_words(text)
        if on is None:
            return Verdict("ask", f"{dev} has no parameters; the words say neither on nor off",
                           (dev,))
        return Verdict("run", f"set_param on {dev} (no parameters) -> set_power({on})",
                       call=ToolCall("set_power", {"device_id": dev, "on": on}, call.id))
    if "name" not in call.arguments or not params or name in params:
        return Verdict("run", "named", call=call)
    if len(params) == 1:
        fixed = ToolCall(call.name, {**call.arguments, "name": params[0]}, call.id)
        return Verdict("run", f"parameter {name!r} -> {params[0]!r}", call=fixed)
    return Verdict("ask", f"{dev} has no parameter {name!r} ({', '.join(params)})",
                   tuple(params), param_of=dev)


def check_music_call(call: ToolCall, text: str) -> Verdict:
    if _MUSIC_WORDS.search(text.lower()):
        return Verdict("run", "music named", call=call)
    return Verdict("drop", f"{call.name}: the user's words say nothing about music")


_DEVICE_WORDS = re.compile(r"\b(?:devices?|appliances?|switched|turned)\b|"
                           r"设备|电器|家电|开着|关着")


def check_read_call(call: ToolCall, text: str, devices: Devices) -> Verdict:
    """A device *read* (list_devices) only for words about the home's devices: Qwen2.5-0.5B
    called it for "今天晚上吃什么好呢？" and then had nothing to say about food."""
    words = Words.of(text)
    if mentions_device(text, devices) or _DEVICE_WORDS.search(text.lower()) or any(
            words.say(w) for ws in _PARAM_WORDS.values() for w in ws):
        return Verdict("run", "devices named", call=call)
    return Verdict("drop", f"{call.name}: the user's words are not about devices")


def check_call(call: ToolCall, acts: str, text: str, devices: Devices,
               robot_room: str = "") -> Verdict:
    """The verdict for a model's tool call; ``acts`` is what the tool moves ("device",
    "music"), or reads ("device_read"); "" = a read with no such check."""
    if acts == "device":
        return check_device_call(call, text, devices, robot_room)
    if acts == "music":
        return check_music_call(call, text)
    if acts == "device_read":
        return check_read_call(call, text, devices)
    return Verdict("run", "read-only tool", call=call)


def device_name(dev_id: str, info: Mapping[str, Any], lang: str) -> str:
    name = info.get("name_zh") if lang == "zh" else info.get("name_en")
    return str(name or info.get("name_en") or info.get("name_zh") or dev_id.replace("_", " "))


def param_name(param: str, lang: str) -> str:
    """A parameter as the user would say it ("亮度" for brightness in Chinese)."""
    words = _PARAM_WORDS.get(param, ())
    zh = next((w for w in words if is_cjk(w[0])), "")
    return zh if lang == "zh" and zh else param.replace("_", " ")


# ---------------------------------------------------------------- the owner's facts
# "my", "our", or a name's ("Mochi's": capitalised, not the sentence's first word, so
# "today's weather" and "the world's tallest" are not about the owner)
_OWNER_EN = re.compile(r"\b(?:[Mm]y|[Oo]ur|[Mm]ine|[Oo]urs)\b|(?<=\w[\s,])[A-Z][a-z]+'s\b")
_OWNER_ZH = re.compile(r"我的|我们|我家|咱家|咱们|[A-Za-z]+\s*的")
_STOP_EN = frozenset("the a an is are was were what whats who whom whose when where why how "
                     "which does do did my our mine ours of for to in on at and or with "
                     "from about me you your it its this that".split())


def asks_about_owner(text: str) -> bool:
    """A question about the owner's own life ("Who is Mochi's vet?", "When does my car
    insurance expire?", "Mochi的兽医是谁？"): only their notes can answer it."""
    text = text.replace("’", "'")
    question = is_question(text) or text.rstrip().endswith(("?", "？", "吗", "呢"))
    if not question or re.search(r"\byour\b|你的", text.lower()):
        return False  # "what's your name?" is about the robot
    return bool(_OWNER_EN.search(text) or _OWNER_ZH.search(text))


def mentions_device(text: str, devices: Devices) -> bool:
    """Do the words name a device, a kind of device or a room ("is my bedroom light on?"
    is for the devices, not for the notes)?"""
    words = Words.of(text)
    rooms = {str(d.get("room")) for d in devices.values() if d.get("room")}
    return bool(named_devices(words, devices)) or any(
        words.say(w) for ws in _TYPE_WORDS.values() for w in ws) or any(
        words.say(r) for r in rooms)


def topic_words(text: str) -> set[str]:
    """What a question is about: its content words (en) and character pairs (zh), to see
    whether the user already told the robot about it earlier in the conversation."""
    words = {_fold(w) for w in re.findall(r"[a-z0-9]+", text.lower().replace("'s", " "))
             if len(w) >= 3 and w not in _STOP_EN}
    cjk = "".join(c for c in text if is_cjk(c))
    cjk = re.sub(r"谁|什么|哪|为什么|怎么|多少|我的|我们|是|的|吗|呢", " ", cjk)
    pairs = {cjk[i:i + 2] for i in range(len(cjk) - 1) if " " not in cjk[i:i + 2]}
    return words | pairs
