"""Local device commands in Chinese and English, without a model. Pure Python, no ROS.

Two sentence layers, both in hassil's template format:
- ``ha``: the sentences Home Assistant maintains (``home-assistant-intents``: HassTurnOn,
  HassClimateSetTemperature, HassLightSet, HassSetVolume, ...);
- ``gamgin``: our own files in ``gamgin_devices/sentences/`` for what HA misses
  (relative changes, 一半/max, fan levels, bare "开灯", music, yes/no).
Our rooms and device names (config/devices.yaml) are the ``{area}`` / ``{name}`` slot lists.

The dialogue node calls ``DeviceIntents().handle(text, lang, state)`` in-process and
performs the returned ``DeviceAction``s through the devices/* services; ``None`` means
"not a device command" (the LLM answers). Pass ``state`` ({device_id: {param: value}},
e.g. from devices/list; the key "on" (1.0/0.0) is the power) so relative commands
("调高两度") come back as absolute values and "客厅灯开着吗" can be answered.

The robot's room (``robot_room``) is the area of a command that names none, as a Home
Assistant satellite's area is: HA's sentences that need an area from the context match,
and "开灯" means this room's light. A sentence with two commands ("关掉风扇然后打开电视")
gives both; with something else in it ("turn off the fan and tell me a joke") the device
part is done and the other part comes back as ``rest`` for the dialogue to answer.
"""

from __future__ import annotations

import copy
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml
from hassil import Intents, recognize_all, recognize_best
from hassil.intents import TextSlotList
from hassil.util import merge_dict

from gamgin_devices.registry import (
    PARAM_DOMAIN,
    DeviceSpec,
    Refused,
    Registry,
    fmt_number,
    load_registry,
)

SENTENCES_DIR = Path(__file__).parent / "sentences"
LANGS = {"zh": "zh-CN", "en": "en"}
LAYERS = ("ha", "gamgin")
# Words around a command that change nothing, tried off only when the whole utterance
# does not match: a leading filler, a trailing courtesy -- and Whisper's favourite
# hallucinations on the silence after speech ("Thank you.", "Thanks for watching!").
_EDGE_WORDS = {
    "en": (re.compile(r"^(?:(?:so|ok|okay|um+|uh+|er|hmm+|hey|hi|now|and|well|please|just|oh"
                      r"|alright|right|kindly|(?:can|could|would|will) (?:you|u)|go ahead and"
                      r"|i (?:want|need|would like) you to|i'd like you to)\b\s*)+"),
           re.compile(r"(?:\s*\b(?:thank you(?: very much)?|thanks(?: for watching)?|please"
                      r"|now|right now|for me|ok|okay|too|as well|(?:would|will|can|could) you"
                      r"|if you (?:can|could|don't mind)))+$")),
    "zh": (re.compile(r"^(?:嗯+|呃+|额|啊|哎|诶|唉|那个|这个|好的|好|请|麻烦|帮忙|帮我|替我|给我"
                      r"|你|您|能不能|能否|可不可以|可以|能|就|先|快)+"),
           re.compile(r"(?:谢谢你?|谢啦|多谢|好吗|好不好|行吗|行不行|可以吗|成吗|好了|就好|就行|吧|哦|啊|呀|呢|啦|嘛"
                      r"|一下子?)+$")),
}
# The wake word or the robot's name in front of a command ("嗯，金坚，…", "hey Jinjian, …"),
# with the fillers before it; "|" marks a clause boundary (punctuation).
_WAKE_HEAD = {
    "zh": r"^(?:(?:嗯+|呃+|哎|诶|嘿|喂|hey|hi|ok|okay)[\s|]*)*"
          r"(?:(?:{words})(?:同学|啊|呀)?[\s|]*)+",
    "en": r"^(?:(?:hey|hi|hello|ok|okay|um+|uh+|so|oh|yo)[\s|]*)*(?:(?:{words})\b[\s|]*)+",
}
# a request asked as a question: "你可以把电视打开吗" / "能帮我开灯吗" is "把电视打开"
_ASKED = {
    "zh": re.compile(r"^(?:请)?(?:你|您)?(?:能不能|可不可以|可以|能否|可否|能)"
                     r"(?:帮我|给我|帮忙|替我)?(.+?)(?:吗|么|嘛|呢)?$"),
    "en": re.compile(r"^(?:would|do) you mind (turning|switching|setting|making|dimming|muting"
                     r"|putting|lowering|raising|increasing|decreasing|brightening)\b(.*)$"),
}
_GERUND = {"turning": "turn", "switching": "switch", "setting": "set", "making": "make",
           "dimming": "dim", "muting": "mute", "putting": "put", "lowering": "lower",
           "raising": "raise", "increasing": "increase", "decreasing": "decrease",
           "brightening": "brighten"}
# how a question is asked: "all lights off" is a command, "are all lights off" a question
_QUESTION = {
    "zh": re.compile(r"吗|么|呢|没有?$|多少|几|是不是|有没有|开没开|关没关|什么|怎么|谁|哪"),
    "en": re.compile(r"^(?:is|are|was|were|what|what's|whats|which|how|do|does|did|who|where"
                     r"|when|why|can|could|will|would|should|has|have)\b"),
}
# "here" said out loud: the robot's room. Taken out of the sentence (a command that names no
# room means the robot's room anyway) and remembered, so that with a known room nothing
# elsewhere is picked.
_HERE = {
    "zh": re.compile(r"(?:这里|这儿|这边|这个房间|这间(?:房间|屋子|屋)|这屋|屋里|屋子里|房间里)"
                     r"(?:的|面的)?"),
    "en": re.compile(r"\s*\b(?:(?:in|over|right) here|here|(?:(?:in|of) )?(?:this|the) room)\b"),
}
# Where one command may end and the next begin; "|" is punctuation. Only tried when the
# whole sentence is not a command; spans are joined back greedily (longest first), so "和"
# in "暖和" or "and" inside a name costs a try, not a wrong split.
_SEPARATORS = {
    "zh": re.compile(r"(\||然后|接着|之后|并且|而且|同时|顺便|另外|还有|还要|以及|跟"
                     r"|(?<![暖柔温缓平])和|再(?=[把将给帮打开关调放播告讲说来]))"),
    "en": re.compile(r"(\||\b(?:and then|and also|and|then|also|after that|plus)\b)"),
}
# a part of a compound sentence with one of these in it may take back the command next to
# it ("turn off the fan, no wait, ..."): such a sentence goes to the dialogue whole
_NEGATION = {
    "zh": re.compile(r"不要|别|不用|不是|算了|取消|等等|等一下|不对|先不"),
    "en": re.compile(r"\b(?:no|not|don't|dont|do not|never|wait|cancel|nope|instead|rather)\b"),
}
# ... or make it wait or depend on something ("if it's too hot, turn on the fan", "五分钟之后，
# 关灯"): that is not a command for now
_DEFERRED = {
    "zh": re.compile(r"如果|要是|假如|的话|等我|等会|等一下|待会|一会儿?|分钟|小时|秒钟|明天"
                     r"|明早|今晚|以后|之前|点钟|定时"),  # not 晚上/早上: "晚上好，开灯" is now
    "en": re.compile(r"\b(?:if|when|whenever|unless|until|after|before|later|tomorrow|tonight"
                     r"|minutes?|hours?|seconds?|o'clock|in the (?:morning|afternoon|evening)"
                     r"|at night)\b"),
}
# a question next to a command ("明天几号", "what's the weather tomorrow") only mentions a day:
# the command is for now unless the part also sets a condition or a wait
_CONDITION = {
    "zh": re.compile(r"如果|要是|假如|的话|等|之后|以后|之前|定时|一会|待会|分钟|小时|秒钟|点钟"),
    "en": re.compile(r"\b(?:if|when|whenever|unless|until|after|before|later|minutes?|hours?"
                     r"|seconds?|o'clock)\b"),
}
# "all"/"every": the whole home even where HA's sentence takes the area from the context
_ALL = {"zh": re.compile(r"所有|全部|全屋|全家|家里|每个|一切"),
        "en": re.compile(r"\b(?:all(?! the way)|every|everything|everywhere)\b")}
# a song asked for with no name: "play something", "来首歌吧" is "play", not a search
_NO_QUERY = {"zh": re.compile(r"(?:[一]?首|点|些)?(?:歌|歌曲|歌儿|音乐|曲子)?[吧呗啊呀哦]*"),
             "en": re.compile(r"(?:some|any)?\s*(?:something|anything|music|songs?|tunes?"
                              r"|a (?:song|tune))?")}
# "some jazz" is a search for "jazz"
_QUERY_HEAD = {"zh": re.compile(r"^$"), "en": re.compile(r"^(?:some|a few|a bit of|a little)\s+")}
# words without which a part of a sentence cannot be a device or music command (cheap
# filter before hassil); device, room and kind names are added from the registry
_KEYWORDS = {
    "zh": "开关调设放播停暂亮暗热冷凉暖温度音量声静档风灯空调电视扇首歌曲乐全所有电器设备"
          "高低大小快慢升降加减",
    "en": r"\b(?:turn|switch|set|make|put|change|dim|brighten|mute|silence|raise|lower|increase"
          r"|decrease|reduce|boost|crank|speed|slow|louder|quieter|softer|warmer|hotter|cooler"
          r"|colder|brighter|dimmer|darker|faster|slower|up|down|on|off|play|pause|resume|stop"
          r"|skip|next|previous|music|song|everything|cold|hot|warm|light|lights|lamp|fan|tv"
          r"|volume|brightness|temperature|temp|ac|heater|speed|level|degrees?|percent)\b",
}
# the area hassil copies from the intent context into sentences that need one ("mute",
# "turn the volume up"): "the robot's room", whether it is known or not
HERE = "__here__"
# HA intents that are not about devices or music: the dialogue node answers them
_POWER = {"HassTurnOn": True, "HassTurnOff": False, "GamginTurnOn": True,
          "GamginTurnOff": False}
_MUSIC = {"HassMediaPause": "pause", "HassMediaUnpause": "resume", "HassMediaNext": "next",
          "HassMediaPrevious": "previous"}
_QUERIES = ("HassGetState", "HassClimateGetTemperature", "GamginGetValue")
# the HA intents we act on; the others (timers, lists, vacuums, weather, ...) are not
# loaded: they cost matching time on every sentence and their answer is "not ours" anyway
_HA_USED = {*_POWER, *_MUSIC, *_QUERIES, "HassLightSet", "HassClimateSetTemperature",
            "HassFanSetSpeed", "HassSetVolume", "HassSetVolumeRelative", "HassMediaPlayerMute",
            "HassNevermind"}
# what a unit word after a relative amount means when no parameter is named ("调高两度")
_UNIT_PARAM = {"temperature": "temperature", "speed": "speed"}
# the parameter an HA intent sets, and the entity carrying its value
_HA_SET = {"HassLightSet": ("brightness", "brightness", "light"),
           "HassClimateSetTemperature": ("temperature", "temperature", "climate"),
           "HassFanSetSpeed": ("speed", "percentage", "fan"),
           "HassSetVolume": ("volume", "volume_level", "media_player")}


@dataclass(frozen=True)
class DeviceAction:
    """One thing to do. kind "power": ``on``; "param": ``param`` to ``value`` (absolute) or
    by ``delta`` (relative, when no state was given); "music": ``command`` (+ ``query``)."""

    kind: str
    device_id: str = ""
    on: bool | None = None
    param: str = ""
    value: float | None = None
    delta: float | None = None
    command: str = ""
    query: str = ""

    def resolve(self, current: float, lo: float, hi: float) -> float:
        """The absolute value of a param action given the current one (relative ones saturate)."""
        if self.value is not None:
            return self.value
        return min(max(current + (self.delta or 0.0), lo), hi)


@dataclass(frozen=True)
class IntentAnswer:
    """What to say (in the user's language) and what to do."""

    speech: str
    language: str  # "zh" | "en"
    actions: tuple[DeviceAction, ...] = ()
    intent: str = ""  # matched intent, e.g. "HassTurnOn", "GamginSetRelative"
    layer: str = ""  # "ha" | "gamgin" | "context" (a reply to our question)
    # we asked back (which device? are you sure?): the question's actions wait for the reply;
    # ``actions`` are only those of the other commands in the same sentence
    question: bool = False
    # the part of the sentence that is not a device command ("tell me a joke" in "turn off
    # the fan and tell me a joke"): the dialogue answers it after ``speech``; "" = none
    rest: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Pending:
    kind: str  # "confirm": actions wait for a yes; "clarify": which device?
    expires: float
    answer: IntentAnswer | None = None
    candidates: list[DeviceSpec] = field(default_factory=list)
    complete: Callable[..., IntentAnswer] | None = None  # (devices, state) -> answer


class _NeedsAnswer(Exception):
    """Raised inside resolution to return an answer at once (question or refusal), with the
    question's open state (kept only when the answer is really given, not in a dry run)."""

    def __init__(self, answer: IntentAnswer, pending: _Pending | None = None) -> None:
        super().__init__(answer.speech)
        self.answer, self.pending = answer, pending


class DeviceIntents:
    def __init__(self, registry: Registry | str | Path | None = None,
                 layers: tuple[str, ...] = LAYERS, sentences_dir: str | Path | None = None,
                 pending_timeout_s: float = 30.0, warm: bool = True,
                 robot_room: str | None = None, soundalike: bool = True) -> None:
        self.registry = (registry if isinstance(registry, Registry)
                         else load_registry(registry))
        # per language, built on first use (jieba's words, pinyin, phonemes): see handle()
        self.soundalike: dict[str, object] | None = {} if soundalike else None
        self.layers = tuple(layers)
        if not set(self.layers) <= set(LAYERS) or not self.layers:
            raise ValueError(f"layers must be a non-empty subset of {LAYERS}")
        sdir = Path(sentences_dir) if sentences_dir else SENTENCES_DIR
        self.words = yaml.safe_load((sdir / "responses.yaml").read_text(encoding="utf-8"))
        self.pending_timeout_s = pending_timeout_s
        self._lock = threading.Lock()
        self._pending: _Pending | None = None
        self.last_device: str = ""
        # the room the robot is in ("" = unknown): registry default, set_robot_room at run time
        self.robot_room: str = self.registry.robot_room
        if robot_room is not None:
            self.set_robot_room(robot_room)
        self._intents: dict[str, Intents] = {}
        self._targets_only: dict[str, Intents] = {}  # "和卧室灯": a target with no verb
        self._slots: dict[str, dict] = {}
        for short, code in LANGS.items():
            data = self._sentence_data(code, sdir)
            target = data["intents"].pop("GamginTarget", None)
            self._intents[short] = Intents.from_dict(data)
            self._targets_only[short] = Intents.from_dict(
                {"language": code, "lists": data.get("lists", {}),
                 "expansion_rules": data.get("expansion_rules", {}),
                 "intents": {"GamginTarget": target} if target else {}})
            self._slots[short] = self._slot_lists(short)
        self._t2s = _traditional_to_simplified()
        self._wake = {lang: re.compile(_WAKE_HEAD[lang].format(words="|".join(
                          re.escape(x) for x in sorted(w["wake_words"], key=len, reverse=True))))
                      for lang, w in self.words.items()}
        self._keywords = {short: self._keyword_pattern(short) for short in LANGS}
        if warm:  # first matches build hassil's caches (~100 ms each): pay at start-up
            for short in LANGS:
                for text in self.words[short].get("warm_up", ()):
                    self.handle(text, short, state={}, dry=True)

    def set_robot_room(self, room: str) -> str:
        """Where the robot is now (a room id, name or alias; "" = unknown). Returns the room
        id used: an unknown room is taken as "unknown" rather than guessed."""
        self.robot_room = self.registry.room_id(room)
        return self.robot_room

    # ------------------------------------------------------------------ setup
    def _sentence_data(self, code: str, sdir: Path) -> dict:
        import home_assistant_intents

        ha = home_assistant_intents.get_intents(code)
        if ha is None:
            raise ValueError(f"home-assistant-intents has no language {code!r}")
        data = {k: copy.deepcopy(v) for k, v in ha.items() if k != "intents"}
        data["intents"] = {k: copy.deepcopy(v) for k, v in ha["intents"].items()
                           if k in _HA_USED} if "ha" in self.layers else {}
        ours = yaml.safe_load((sdir / f"{code}.yaml").read_text(encoding="utf-8"))
        if "gamgin" not in self.layers:  # the bare-target rule is plumbing, not a layer
            ours = {k: v for k, v in ours.items() if k != "intents"} | {
                "intents": {"GamginTarget": ours["intents"]["GamginTarget"]}}
        merge_dict(data, ours)
        return data

    def _slot_lists(self, lang: str) -> dict:
        names, areas = [], []
        for d in self.registry.devices.values():
            for n in (d.name_zh, *d.aliases_zh) if lang == "zh" else (d.name_en, *d.aliases_en):
                names.append((n, d.id, {"domain": d.domain}))
        for r in self.registry.rooms.values():
            for n in (r.name_zh, *r.aliases_zh) if lang == "zh" else (r.name_en, *r.aliases_en):
                areas.append((n, r.id))
        return {"name": TextSlotList.from_tuples(names, allow_template=False),
                "area": TextSlotList.from_tuples(areas, allow_template=False),
                "floor": TextSlotList.from_tuples([], allow_template=False)}

    def _keyword_pattern(self, short: str) -> re.Pattern:
        words = [w for d in self.registry.devices.values() for w in self._device_words(d, short)]
        words += [w for w in self.words[short]["domains"].values()]
        names = "|".join(re.escape(w.lower()) for w in sorted(set(words), key=len, reverse=True)
                         if w)
        if short == "zh":
            return re.compile(f"[{_KEYWORDS['zh']}]|{names}")
        return re.compile(f"{_KEYWORDS['en']}|\\b(?:{names})\\b")

    # ------------------------------------------------------------------ entry point
    def handle(self, text: str, lang: str, state: Mapping[str, Mapping[str, float]] | None = None,
               dry: bool = False) -> IntentAnswer | None:
        """Understand one user utterance. ``None``: not a device/music command.
        ``dry``: match only, keep no conversation context (for benchmarks and warm-up).

        A transcript that does not parse is tried once more with the home's words put back
        where it has a sound-alike (握式 -> 卧室 by pinyin, "team we" -> "tv" by phonemes:
        soundalike.py): only a parse of the corrected text counts, so chat that sounds
        like a device stays chat."""
        answer = self._handle(text, lang, state, dry)
        short = _short_lang(lang)
        if answer is None and short is not None and self.soundalike is not None:
            corrector = self._soundalike(short)
            fixed = corrector.correct(text) if corrector is not None else text
            if fixed != text:
                answer = self._handle(fixed, lang, state, dry)
        return answer

    def _soundalike(self, short: str):
        assert self.soundalike is not None
        if short not in self.soundalike:
            from gamgin_devices import soundalike

            self.soundalike[short] = (soundalike.for_registry(self.registry) if short == "zh"
                                      else soundalike.english_for_registry(self.registry))
        return self.soundalike[short]

    def _handle(self, text: str, lang: str, state: Mapping[str, Mapping[str, float]] | None,
                dry: bool) -> IntentAnswer | None:
        short = _short_lang(lang)
        if short is None or not text or not text.strip():
            return None
        marked, here = self._normalize(text, short)
        norm = self._unmark(marked, short)
        if not norm:
            return None
        state = state or {}
        with self._lock:
            pending = self._pending
            if pending is not None and pending.expires < time.monotonic():
                pending = self._pending = None
        result, norm = self._match(norm, short)
        if pending is not None and not dry:
            follow = self._follow_up(pending, result, norm, short, state)
            if follow is not None:
                return follow
        if (result is not None and result.intent.name == "HassTurnOn"
                and (result.intent_metadata or {}).get("slot_combination") == "name_only"
                and self._bare_target(norm, short)):
            result = None  # HA turns on "the fan" said alone: a name is not a command here
        answer, question = None, None
        if result is not None and any(e.is_wildcard and _SEPARATORS[short].search(str(e.value))
                                      for e in result.entities_list):
            # "play something by Adele and turn off the fan": the song's name swallowed a
            # device command; the sentence is two commands if the second one is a device's
            both = self._compound(marked, short, state, here)
            if both is not None and (both[0].question
                                     or any(a.kind != "music" for a in both[0].actions)):
                answer, question = both
        if result is not None and answer is None:
            answer, question = self._resolve(result, short, state, here, said=norm)
            if answer is not None:
                answer, question = self._hold(answer, short, question)
        if answer is None:  # two commands, or a command and something else?
            answer, question = self._compound(marked, short, state, here) or (None, None)
        if answer is None:
            return None
        return self._commit(answer, question, dry)

    def _recognize(self, norm: str, short: str, intents: Intents | None = None):
        # the area a sentence that needs one takes from the context: the robot's room, known
        # or not (resolved in _targets); HA's "mute", "turn up the volume" need it
        kw = dict(slot_lists=self._slots[short], language=LANGS[short],
                  intent_context={"area": {"value": HERE, "text": ""}})
        result = recognize_best(norm, intents or self._intents[short], best_slot_name="name",
                                **kw)
        if (result is not None and result.intent.name in _QUERIES
                and not _QUESTION[short].search(norm)):
            # HA's "[are] all lights off" lets Whisper drop the "are": a sentence that is not
            # asked as a question and is also a command ("all lights off") is the command
            commands = [r for r in recognize_all(norm, intents or self._intents[short], **kw)
                        if r.intent.name not in _QUERIES]
            if commands:
                result = max(commands, key=lambda r: r.text_chunks_matched)
        return result

    def _match(self, norm: str, short: str):
        """(hassil result or None, the text that matched): the whole utterance, else without
        the fillers and courtesies around it."""
        result = self._recognize(norm, short)
        if result is None:
            head, tail = _EDGE_WORDS[short]
            core = norm
            asked = _ASKED[short].match(core)
            if asked is not None:  # "你可以把电视打开吗", "would you mind turning on the fan"
                core = (asked.group(1) if short == "zh"
                        else _GERUND[asked.group(1)] + asked.group(2)).strip()
            for _ in range(3):  # "嗯那个能不能帮我…吧谢谢": strip in turns
                stripped = tail.sub("", head.sub("", core)).strip()
                if stripped == core:
                    break
                core = stripped
            if core and core != norm:
                result = self._recognize(core, short)
                norm = core if result is not None else norm
        return result, norm

    def _resolve(self, result, short: str, state: Mapping, here: bool,
                 ents: dict | None = None, prefer: str = "",
                 said: str = "") -> tuple[IntentAnswer | None, _Pending | None]:
        """What a match means: (answer, the question it leaves open) or (None, None).
        ``prefer``: the device the sentence spoke of just before ("打开卧室灯，调到一半")."""
        ents = dict(ents) if ents is not None else self._entities(result)
        if "area2" in ents:  # "the living room and bedroom lights": each room in turn
            first = self._resolve(result, short, state, here, {
                k: v for k, v in ents.items() if k != "area2"}, prefer, said)
            second = self._resolve(result, short, state, here, {
                **{k: v for k, v in ents.items() if k != "area2"}, "area": ents["area2"]},
                prefer, said)
            if first[0] is None or second[0] is None or first[1] or second[1]:
                return first if first[1] else second
            a, b = first[0], second[0]
            return IntentAnswer(a.speech + (" " if short == "en" else "") + _without_ack(
                b.speech, short), short, a.actions + b.actions, a.intent, a.layer), None
        if ents.get("area") == HERE and _ALL[short].search(said):
            ents["scope"] = "all"  # "打开所有的灯": HA's sentence took the area from the context
        elif (not ents.get("area") and "name" not in ents and ents.get("domain")
              and _ALL[short].search(said)):
            ents["scope"] = "all"  # "把灯全部关掉": a kind with "all" and no room is every one
        try:
            return self._answer(result, short, state, here, ents, prefer), None
        except _NeedsAnswer as exc:
            return exc.answer, exc.pending

    @staticmethod
    def _entities(result) -> dict:
        """A match's slot values; HA's "…_all" sentences ("关掉所有灯") mean every device."""
        ents = {k: v.value for k, v in result.entities.items()}
        if str((result.intent_metadata or {}).get("slot_combination", "")).endswith("_all"):
            ents["scope"] = "all"
        return ents

    def _hold(self, answer: IntentAnswer, short: str,
              question: _Pending | None) -> tuple[IntentAnswer, _Pending | None]:
        """Actions on devices that need a spoken yes wait for it: the answer becomes the
        question "确定要…吗？" and the actions are kept for the yes."""
        confirm = [a.device_id for a in answer.actions if a.device_id in self.registry.devices
                   and self.registry.devices[a.device_id].needs_confirmation]
        if not confirm:
            return answer, question
        return (IntentAnswer(self._say(short, "confirm", action=self._describe(answer, short)),
                             short, (), answer.intent, answer.layer, question=True,
                             rest=answer.rest),
                _Pending("confirm", time.monotonic() + self.pending_timeout_s, answer=answer))

    def _commit(self, answer: IntentAnswer, question: _Pending | None,
                dry: bool) -> IntentAnswer:
        """Remember the device for "再调高一点" and the question left open (not in a dry run:
        a benchmark or warm-up must not leave a question open)."""
        if dry:
            return answer
        held = question.answer if question is not None and question.answer else None
        devs = [a.device_id for a in (held or answer).actions if a.device_id]
        if len(devs) == 1:
            self.last_device = devs[0]
        if question is not None:
            question.expires = time.monotonic() + self.pending_timeout_s
            with self._lock:
                self._pending = question
        return answer

    def _finish(self, answer: IntentAnswer, short: str) -> IntentAnswer:
        """Hold back actions that need a spoken yes; remember the device and the question."""
        return self._commit(*self._hold(answer, short, None), dry=False)

    def normalize(self, text: str, short: str) -> str:
        return self._unmark(self._normalize(text, short)[0], short)

    def _normalize(self, text: str, short: str) -> tuple[str, bool]:
        """(the text as the sentences spell it, with "|" where punctuation ended a clause;
        whether "here" was said). Traditional -> simplified, lower case, the wake word and
        the fillers before it gone, "here" taken out."""
        text = self._t2s(text) if short == "zh" else text.lower()
        if short == "en":
            text = re.sub(r"\ba/c\b", "ac", text)  # the slash would end a clause
        text = re.sub(r"(?<=\d)\.(?=\d)", "\x00", text.strip())  # keep 26.5度
        text = re.sub(r"\s*(?:℃|°\s*[cC]|摄氏度)", "度" if short == "zh" else " degrees", text)
        if short == "zh":  # 二十三度半 = 二十三点五度
            text = re.sub(r"度半", "点五度", text)
        else:  # "nineteen and a half" is one number, not a second clause
            text = re.sub(r"(\d+) and a half\b", "\\1\x005", text)  # kept as 24.5 below
            text = re.sub(r"\b(\w+) and a half\b", r"\1 point five", text)
        if short == "zh":
            text = re.sub(r"[\s、~：:“”\"'‘’·—\-]+", "", text)
            text = re.sub(r"[，。！？；,.!?;…]+", "|", text)
        else:
            text = re.sub(r"[:\"“”]+", " ", text)
            text = re.sub(r"\s*[,.!?;…]+\s*", " | ", text)
            text = re.sub(r"\s+", " ", text)
        text = text.replace("\x00", ".").strip(" |")
        text = self._wake[short].sub("", text).strip(" |")
        text, n = _HERE[short].subn("", text)
        return text.strip(" |"), n > 0

    @staticmethod
    def _unmark(marked: str, short: str) -> str:
        if short == "zh":
            return marked.replace("|", "")
        return re.sub(r"\s+", " ", marked.replace("|", " ")).strip()

    # ------------------------------------------------------------------ two commands in one
    def _compound(self, marked: str, short: str, state: Mapping,
                  here: bool) -> tuple[IntentAnswer, _Pending | None] | None:
        """"关掉风扇然后打开电视" -> both; "turn off the fan and tell me a joke" -> the fan,
        with "tell me a joke" as ``rest``. The sentence is cut where clauses may end and the
        longest pieces that are commands are taken from the left; a piece that is only a
        device ("和卧室灯", "and the tv") shares the verb of the command next to it. Nothing
        is done if no piece is a command, or if the rest may take a command back."""
        segs: list[str] = []
        seps: list[str] = []  # seps[k] joins segs[k] and segs[k + 1]
        between: list[str] = []
        for k, piece in enumerate(_SEPARATORS[short].split(marked)):
            piece = piece.strip()
            if k % 2:  # a separator; ", and then" is one boundary, not three
                between.append(piece)
            elif piece:
                if segs:
                    seps.append(" ".join(between))
                segs.append(piece)
                between = []
        if len(segs) < 2 or len(segs) > 6 or not self._keywords[short].search(marked):
            return None
        glue = "" if short == "zh" else " "

        def span(i: int, j: int) -> str:
            out = segs[i]
            for k in range(i, j):
                sep = "" if seps[k] == "|" else seps[k]
                out += glue + sep + glue + segs[k + 1]
            return self._unmark(out, short)

        clauses: list[list] = []  # [kind "cmd"|"rest", text, result, answer, question]
        st = {k: dict(v) for k, v in state.items()}  # as the earlier commands leave it
        i, n = 0, len(segs)
        while i < n:
            prefer = self._spoken_of(clauses)
            for j in range(n - 1, i - 1, -1):
                text = span(i, j)
                if (i, j) == (0, n - 1) or not text or not self._keywords[short].search(text):
                    continue
                result, text = self._match(text, short)
                if result is None or self._bare_target(text, short):
                    continue  # "and the fan" shares a verb below; it is no "turn on" of its own
                if j > i and any(e.is_wildcard for e in result.entities_list):
                    continue  # "放首歌，再把灯关了": a song's name never swallows the next clause
                answer, question = self._resolve(result, short, st, here, prefer=prefer,
                                                 said=text)
                if answer is not None:
                    clauses.append(["cmd", text, result, answer, question])
                    if "kind" not in result.entities:  # "太冷了，调高一点" is one change
                        _apply(st, answer.actions)
                    i = j + 1
                    break
            else:
                piece = self._unmark(segs[i], short)
                said = self._continued(piece, prefer, short, st, here)
                if said is not None:  # "声音太小了，大一点": the same device, said again
                    clauses.append(["cmd", piece, *said])
                    _apply(st, said[1].actions)
                elif piece:
                    clauses.append(["rest", piece, None, None, None])
                i += 1
        # "关掉电视和风扇", "把电视和风扇都关掉": a bare device next to a command shares its verb
        for k, c in enumerate(clauses):
            if c[0] != "rest":
                continue
            for nb in (k - 1, k + 1):
                if 0 <= nb < len(clauses) and clauses[nb][0] == "cmd":
                    shared = self._retarget(c[1], clauses[nb][2], short, st, here)
                    if shared is not None:
                        clauses[k] = ["cmd", c[1], clauses[nb][2], *shared]
                        break
        cmds = [c for c in clauses if c[0] == "cmd"]
        rest_parts = [c[1] for c in clauses if c[0] == "rest"]
        if not cmds or any(_NEGATION[short].search(r) or _deferred(r, short)
                           for r in rest_parts):
            return None
        power = {(a.device_id, a.on) for c in cmds for a in c[3].actions if a.kind == "power"}
        if any((dev, not on) in power for dev, on in power):
            return None  # "打开电视，关了": on and off at once is no command to guess at
        answers, question = [], None
        for c in cmds:
            answer, q = self._hold(c[3], short, c[4])
            if answer.question:
                if any(a.question for a in answers):
                    continue  # one question at a time: the first one is asked
                question = q
            answers.append(answer)
        # "太冷了，调高一点": the last change of a parameter is the one that counts
        last = {(a.device_id, a.param): (k, m) for k, ans in enumerate(answers)
                for m, a in enumerate(ans.actions) if a.kind == "param"}
        actions = [a for k, ans in enumerate(answers) for m, a in enumerate(ans.actions)
                   if a.kind != "param" or last[(a.device_id, a.param)] == (k, m)]
        kept = [ans for k, ans in enumerate(answers)
                if not ans.actions or any(x is a for a in ans.actions for x in actions)]
        rest = self._rest(glue.join(rest_parts), short)
        speech = (" " if short == "en" else "").join(
            a.speech if k == 0 else _without_ack(a.speech, short) for k, a in enumerate(kept))
        intents = list(dict.fromkeys(a.intent for a in kept if a.intent))
        layers = sorted({a.layer for a in kept if a.layer})
        return (IntentAnswer(speech, short, tuple(actions), "+".join(intents), "+".join(layers),
                             question=any(a.question for a in kept), rest=rest), question)

    def _continued(self, piece: str, device: str, short: str, state: Mapping,
                   here: bool) -> tuple | None:
        """(result, answer, question) if a short piece with no device in it is a command
        about ``device`` ("大一点" after "声音太小了", "faster" after "turn on the fan")."""
        short_enough = len(piece) <= 6 if short == "zh" else len(piece.split()) <= 4
        if not device or not piece or not short_enough or not self._keywords[short].search(piece):
            return None
        name = self.registry.devices[device].name(short)
        result, _ = self._match(name + ("" if short == "zh" else " ") + piece, short)
        if result is None:
            return None
        answer, question = self._resolve(result, short, state, here)
        return (result, answer, question) if answer is not None else None

    @staticmethod
    def _spoken_of(clauses: list[list]) -> str:
        """The one device the last command of a sentence was about ("" if none or several)."""
        for c in reversed(clauses):
            if c[0] == "cmd":
                devs = {a.device_id for a in c[3].actions if a.device_id}
                return devs.pop() if len(devs) == 1 else ""
        return ""

    def _retarget(self, text: str, command, short: str, state: Mapping,
                  here: bool) -> tuple[IntentAnswer, _Pending | None] | None:
        """The command's intent applied to ``text`` if ``text`` only names a device."""
        if command.intent.name in _QUERIES or "Music" in command.intent.name:
            return None
        target = self._recognize(text, short, self._targets_only[short])
        if target is None:
            return None
        said = {k: v.value for k, v in target.entities.items()}
        ents = {k: v.value for k, v in command.entities.items()
                if k not in ("name", "area", "domain", "scope")}
        if "name" not in said and "domain" not in said:
            # "turn on the lights in the living room and the bedroom": the bedroom's lights;
            # "把客厅和卧室的灯都关了": the kind of the device the command named
            named = command.entities.get("name")
            domain = (command.entities["domain"].value if "domain" in command.entities
                      else self.registry.devices[named.value].domain if named else "")
            if domain:
                ents["domain"] = domain
        ents.update(said)
        answer, question = self._resolve(command, short, state, here, ents)
        return (answer, question) if answer is not None else None

    def _bare_target(self, text: str, short: str) -> bool:
        return self._recognize(text, short, self._targets_only[short]) is not None

    def _rest(self, text: str, short: str) -> str:
        """What the dialogue still has to answer: without separators and courtesies."""
        head, tail = _EDGE_WORDS[short]
        text = re.sub(r"^(?:再|还|and|then|also)\s*", "", text.strip())
        core = tail.sub("", head.sub("", text)).strip()
        return text if core else ""

    # ------------------------------------------------------------------ conversation
    def _follow_up(self, pending: _Pending, result, norm: str, short: str,
                   state: Mapping) -> IntentAnswer | None:
        name = result.intent.name if result is not None else ""
        if pending.kind == "confirm":
            if name == "GamginConfirm":
                self._clear()
                return pending.answer
            if name in ("GamginDeny", "HassNevermind"):
                self._clear()
                return IntentAnswer(self._say(short, "cancelled"), short, (), name, "context")
            self._clear()  # anything else: the user moved on; never act on a stale yes
            return None
        # clarify: a short reply naming one candidate ("卧室的", "the bedroom one") answers
        # the question; anything that is a command of its own is a new command.
        if name in ("GamginDeny", "HassNevermind"):
            self._clear()
            return IntentAnswer(self._say(short, "cancelled"), short, (), name, "context")
        picked = self._picked(pending.candidates, norm, short)
        if picked is None or pending.complete is None:
            if result is not None:
                self._clear()
            return None  # a new command, or something else: the question stays open
        self._clear()
        try:
            answer = pending.complete([picked], state)  # today's values, not the question's
        except _NeedsAnswer as exc:
            answer = exc.answer
        if answer is None:
            return None
        return self._finish(IntentAnswer(answer.speech, short, answer.actions, answer.intent,
                                         "context", answer.question), short)

    def _picked(self, candidates: list[DeviceSpec], norm: str, short: str) -> DeviceSpec | None:
        """The one candidate a reply names, if the reply is only that name plus fillers."""
        text = norm.lower()
        found = [(len(k), k.lower(), d) for d in candidates for k in self._device_words(d, short)
                 if k and k.lower() in text]
        if len({d.id for _, _, d in found}) != 1:
            return None
        _, key, dev = max(found, key=lambda f: f[0])
        rest = text.replace(key, " ", 1)
        fillers = self.words[short].get("reply_fillers", [])
        for f in sorted(fillers, key=len, reverse=True):
            rest = re.sub(rf"\b{re.escape(f)}\b" if short == "en" else re.escape(f), " ", rest)
        return dev if not rest.strip() else None

    def _clear(self) -> None:
        with self._lock:
            self._pending = None

    def _device_words(self, d: DeviceSpec, short: str) -> list[str]:
        room = self.registry.rooms[d.room]
        if short == "zh":
            return [d.name_zh, *d.aliases_zh, room.name_zh, *room.aliases_zh]
        return [d.name_en, *d.aliases_en, room.name_en, *room.aliases_en]

    # ------------------------------------------------------------------ intents -> actions
    def _answer(self, result, short: str, state: Mapping, here: bool = False,
                ents: dict | None = None, prefer: str = "") -> IntentAnswer | None:
        """A hassil match as an answer; ``ents`` replaces its entities (a shared verb)."""
        name = result.intent.name
        ents = dict(ents) if ents is not None else self._entities(result)
        if ents.get("area") == HERE:  # from the context: no room was named
            del ents["area"]
        if here:
            ents["here"] = True
        if prefer:
            ents["prefer"] = prefer
        layer = "gamgin" if name.startswith("Gamgin") else "ha"
        scope_all = ents.get("scope") == "all"

        def done(speech: str, actions: list[DeviceAction]) -> IntentAnswer:
            return IntentAnswer(speech, short, tuple(actions), name, layer)

        if name in _POWER:
            on = _POWER[name]

            def power(devs: list[DeviceSpec], st: Mapping | None = None) -> IntentAnswer:
                names = self._join([d.name(short) for d in devs], short)
                return done(self._say(short, "turn_on" if on else "turn_off", names=names),
                            [DeviceAction("power", d.id, on=on) for d in devs])

            devs = self._targets(ents, short, None, scope_all, power, plural_ok=True)
            return power(devs)
        if name == "HassMediaPlayerMute":  # "静音", "mute the tv": volume 0
            name, ents = "GamginSetValue", {**ents, "param": "volume", "value": 0}
        if name in _HA_SET or name in ("GamginSetValue", "GamginSetFraction"):
            if name in _HA_SET:
                param, key, domain = _HA_SET[name]
                if key not in ents:
                    return None  # e.g. a light colour: not something our devices do
                value, fraction = float(ents[key]), None
                if "name" not in ents:
                    ents.setdefault("domain", domain)
            else:
                param = str(ents.get("param", "") or _UNIT_PARAM.get(ents.get("unit", ""), ""))
                value = float(ents["value"]) if "value" in ents else None
                fraction = _fraction(ents)
                if value is None and fraction is None:
                    return None  # "三分之五": not a part of anything

            def setter(devs: list[DeviceSpec], st: Mapping | None = None) -> IntentAnswer:
                return self._set(devs, param, value, fraction, short, done, name)

            return setter(self._targets(ents, short, param or None, scope_all, setter))
        if name in ("GamginSetRelative", "HassSetVolumeRelative"):
            if name == "HassSetVolumeRelative":
                param = "volume"
                step = ents.get("volume_step")
                if isinstance(step, (int, float)):
                    amount, sign = abs(float(step)), (1.0 if step >= 0 else -1.0)
                else:
                    amount, sign = None, (1.0 if step == "up" else -1.0)
            else:
                param = str(ents.get("param", "") or _UNIT_PARAM.get(ents.get("unit", ""), ""))
                amount = float(ents["amount"]) if "amount" in ents else None
                sign = 1.0 if ents.get("direction") == "up" else -1.0

            def relative(devs: list[DeviceSpec], st: Mapping | None = None) -> IntentAnswer:
                return self._relative(devs, param, amount, sign, short,
                                      state if st is None else st, done)

            return relative(self._targets(ents, short, param or None, scope_all, relative,
                                          use_last=True))
        if name == "GamginMusicPlay":
            query = _QUERY_HEAD[short].sub("", str(ents.get("query", "")).strip())
            if _NO_QUERY[short].fullmatch(query):
                query = ""
            return done(self._say(short, "music_play_query" if query else "music_play",
                                  query=query),
                        [DeviceAction("music", "music", command="play", query=query)])
        if name in _MUSIC or name in ("GamginMusicStop", "GamginMusicControl"):
            cmd = _MUSIC.get(name) or str(ents.get("command", "stop"))
            return done(self._say(short, f"music_{cmd}"), [DeviceAction("music", "music",
                                                                         command=cmd)])
        if name in _QUERIES:
            return self._query(name, ents, short, state, done)
        if name in ("GamginConfirm", "GamginDeny", "HassNevermind"):
            return None  # a yes/no with nothing pending is small talk, not a command
        return None  # timers, weather, ...: not ours

    def _query(self, name: str, ents: dict, short: str, state: Mapping,
               done) -> IntentAnswer | None:
        """"客厅灯开着吗" / "what is the AC temperature": answered from ``state`` alone; without
        a known value there is nothing true to say here, so the LLM (with its tools) answers."""
        param = "temperature" if name == "HassClimateGetTemperature" else ents.get("param")
        if name == "HassClimateGetTemperature" and "name" not in ents:
            ents.setdefault("domain", "climate")

        def answer(devs: list[DeviceSpec], st: Mapping | None = None) -> IntentAnswer:
            st = state if st is None else st
            parts = []
            for d in devs:
                now = st.get(d.id) or {}
                if param:
                    p = d.params.get(param) if param else None
                    if p is None or p.name not in now:
                        return None
                    parts.append(self._say(short, "state_value", name=d.name(short),
                                           param=self._param(p.name, short),
                                           value=fmt_number(float(now[p.name])),
                                           unit=self._unit(p.unit, short)))
                else:
                    if "on" not in now:
                        return None
                    parts.append(self._say(short, "state_on" if now["on"] else "state_off",
                                           name=d.name(short)))
            return done(" ".join(parts) if short == "en" else "".join(parts), [])

        # "灯开着吗" is about every light: answer for each rather than ask which. A question
        # never asks back or says "no such device": HA's "who is {state}" (a person) also
        # matches "Who is Mochi's vet?", which is for the owner's notes, not for us
        if "name" not in ents and not (ents.get("area") or ents.get("domain") or param):
            return None
        try:
            devs = self._targets(ents, short, param, "name" not in ents, answer,
                                 plural_ok=True)
        except _NeedsAnswer:
            return None
        return answer(devs)

    def _targets(self, ents: dict, short: str, param: str | None, scope_all: bool,
                 complete: Callable[..., IntentAnswer], plural_ok: bool = False,
                 use_last: bool = False) -> list[DeviceSpec]:
        """The devices a command is about, or _NeedsAnswer (a question or "not found").
        No room named: the robot's room first, as a Home Assistant satellite's area ("开灯"
        -> this room's light); "这里"/"here" with a known room: only that room."""
        devices = list(self.registry.devices.values())
        here = bool(ents.get("here")) and bool(self.robot_room) and not ents.get("area")
        if "name" in ents:
            dev = self.registry.devices[ents["name"]]
            if here and dev.room != self.robot_room:  # "the tv in here", but it is elsewhere
                what = self._what(short, self.robot_room, dev.domain, None)
                raise _NeedsAnswer(IntentAnswer(self._say(short, "not_found", what=what),
                                                short, (), "", "", question=False))
            return [dev]
        area, domain = ents.get("area"), ents.get("domain")
        if here:
            area = self.robot_room
        cands = [d for d in devices if (not area or d.room == area)
                 and (not domain or d.domain == domain) and (not param or param in d.params)]
        if not cands:
            what = self._what(short, area, domain, param)
            raise _NeedsAnswer(IntentAnswer(self._say(short, "not_found", what=what), short,
                                            (), "", "", question=False))
        if param and not domain and len(cands) > 1:
            owners = [d for d in cands if d.domain == PARAM_DOMAIN.get(param)]
            cands = owners or cands
        if len(cands) == 1 or scope_all or (plural_ok and area and domain):
            return cands
        for prefer in (ents.get("prefer", ""), self.last_device if use_last else ""):
            if prefer and prefer in {d.id for d in cands}:  # the device just spoken of
                return [self.registry.devices[prefer]]
        if not area and self.robot_room:
            local = [d for d in cands if d.room == self.robot_room]
            if len(local) == 1 or (local and plural_ok and domain):
                return local
            cands = local or cands
        options = self._join([d.name(short) for d in cands], short, last_key="or")
        key = "ask_which" if domain else "ask_device"
        what = self.words[short]["domains"].get(domain, "") if domain else ""
        raise _NeedsAnswer(IntentAnswer(self._say(short, key, what=what, options=options),
                                        short, (), "", "", question=True),
                           _Pending("clarify", time.monotonic() + self.pending_timeout_s,
                                    candidates=cands, complete=complete))

    def _set(self, devs: list[DeviceSpec], param: str, value: float | None,
             fraction: float | None, short: str, done, intent: str) -> IntentAnswer:
        actions, parts = [], []
        for d in devs:
            p = d.params.get(param) if param else d.primary_param
            if p is None:
                raise _NeedsAnswer(done(self._say(short, "no_param", name=d.name(short),
                                                  param=self._param(param, short)), []))
            v = p.min + fraction * (p.max - p.min) if fraction is not None else value
            if intent == "HassFanSetSpeed" and v is not None and v > p.max:
                v = p.min + math.ceil(v / 100.0 * (p.max - p.min + 1)) - 1  # percent -> level
            try:
                v = p.check(v)
            except Refused:
                raise _NeedsAnswer(done(self._say(
                    short, "out_of_range", name=d.name(short), param=self._param(p.name, short),
                    min=fmt_number(p.min), max=fmt_number(p.max), unit=self._unit(p.unit, short)),
                    [])) from None
            actions.append(DeviceAction("param", d.id, param=p.name, value=v))
            parts.append(self._say(short, "set", name=d.name(short),
                                   param=self._param(p.name, short), value=fmt_number(v),
                                   unit=self._unit(p.unit, short)))
        return done(" ".join(parts) if short == "en" else "".join(parts), actions)

    def _relative(self, devs: list[DeviceSpec], param: str, amount: float | None, sign: float,
                  short: str, state: Mapping, done) -> IntentAnswer:
        actions, parts = [], []
        for d in devs:
            p = d.params.get(param) if param else d.primary_param
            if p is None:
                raise _NeedsAnswer(done(self._say(short, "no_param", name=d.name(short),
                                                  param=self._param(param, short)), []))
            delta = sign * (amount if amount is not None else p.nudge)
            unit = self._unit(p.unit, short)
            words = dict(name=d.name(short), param=self._param(p.name, short), unit=unit)
            current = (state.get(d.id) or {}).get(p.name)
            if current is None:  # no state given: the caller applies the delta
                actions.append(DeviceAction("param", d.id, param=p.name, delta=delta))
                parts.append(self._say(short, "set_up" if delta > 0 else "set_down",
                                       amount=fmt_number(abs(delta)), **words))
                continue
            target = p.check(min(max(float(current) + delta, p.min), p.max))
            if target == float(current):
                parts.append(self._say(short, "at_limit", value=fmt_number(target), **words))
                continue
            actions.append(DeviceAction("param", d.id, param=p.name, value=target))
            parts.append(self._say(short, "set", value=fmt_number(target), **words))
        return done(" ".join(parts) if short == "en" else "".join(parts), actions)

    # ------------------------------------------------------------------ words
    def _say(self, short: str, key: str, **kw) -> str:
        return self.words[short][key].format_map(_Blank(kw))

    def _param(self, name: str, short: str) -> str:
        return self.words[short]["params"].get(name, name)

    def _unit(self, unit: str, short: str) -> str:
        return self.words[short]["units"].get(unit, unit)

    def _join(self, items: list[str], short: str, last_key: str = "join_last") -> str:
        w = self.words[short]
        if len(items) <= 1:
            return "".join(items)
        return w["join"].join(items[:-1]) + w[last_key] + items[-1]

    def _what(self, short: str, area, domain, param) -> str:
        w = self.words[short]
        room = self.registry.rooms.get(area) if area else None
        room_name = (room.name_zh if short == "zh" else room.name_en + " ") if room else ""
        thing = w["domains"].get(domain, "") if domain else w["params"].get(param or "", "")
        return f"{room_name}{thing}".strip() or ("这个设备" if short == "zh" else "that device")

    def _describe(self, answer: IntentAnswer, short: str) -> str:
        parts = []
        for a in answer.actions:
            d = self.registry.devices[a.device_id]
            if a.kind == "power":
                parts.append(self._say(short, "action_on" if a.on else "action_off",
                                       names=d.name(short)))
            elif a.kind == "param":
                p = d.params[a.param]
                parts.append(self._say(short, "action_set", name=d.name(short),
                                       param=self._param(p.name, short),
                                       value=fmt_number(a.value if a.value is not None
                                                        else a.delta or 0),
                                       unit=self._unit(p.unit, short)))
        return self.words[short]["join"].join(parts)


def state_from_devices(devices) -> dict[str, dict[str, float]]:
    """``state`` for ``handle`` from devices/list's ``Device`` messages (or anything with
    ``.id`` and ``.params`` of ``.name``/``.value``): no rclpy needed here."""
    return {d.id: {**{p.name: float(p.value) for p in d.params}, "on": float(d.on)}
            for d in devices}


class _Blank(dict):
    """format_map helper: a placeholder a template does not get stays empty."""

    def __missing__(self, key: str) -> str:
        return ""


def _apply(state: dict, actions) -> None:
    """The state after ``actions`` (absolute param values only)."""
    for a in actions:
        if a.kind == "param" and a.value is not None:
            state.setdefault(a.device_id, {})[a.param] = float(a.value)
        elif a.kind == "power":
            state.setdefault(a.device_id, {})["on"] = 1.0 if a.on else 0.0


def _without_ack(speech: str, short: str) -> str:
    """"好的，电视已打开。" -> "电视已打开。": one "OK" is enough for several commands."""
    out = re.sub(r"^(?:好的，|OK, )", "", speech)
    return out[:1].upper() + out[1:] if short == "en" else out


def _fraction(ents: Mapping) -> float | None:
    """一半 / 三成 / 四分之一 / "a quarter" as a part of the range; None if none was said."""
    if "fraction" in ents:
        return float(ents["fraction"])
    if "tenths" in ents:
        return float(ents["tenths"]) / 10.0
    if "den" in ents and "num" in ents and 0 < float(ents["num"]) <= float(ents["den"]):
        return float(ents["num"]) / float(ents["den"])
    return None


def _deferred(part: str, short: str) -> bool:
    """A part of a compound sentence that makes its command wait or depend on something."""
    if not _DEFERRED[short].search(part):
        return False
    return bool(_CONDITION[short].search(part)) or not _QUESTION[short].search(part)


def _short_lang(lang: str) -> str | None:
    lang = (lang or "").lower().replace("_", "-")
    if lang.startswith(("zh", "cmn", "yue")):
        return "zh"
    if lang.startswith("en"):
        return "en"
    return None


def _traditional_to_simplified() -> Callable[[str], str]:
    """Whisper often writes Mandarin in traditional characters; our sentences are simplified."""
    try:
        import opencc

        conv = opencc.OpenCC("t2s")
        return conv.convert
    except Exception:
        return lambda s: s
