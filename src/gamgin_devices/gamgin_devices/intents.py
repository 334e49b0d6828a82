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
from hassil import Intents, recognize_best
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
    "en": (re.compile(r"^(?:(?:so|ok|okay|um|uh|hey|now|and|well|please)\b\s*)+"),
           re.compile(r"(?:\s*\b(?:thank you(?: very much)?|thanks(?: for watching)?|please"
                      r"|now|right now))+$")),
    "zh": (re.compile(r"^(?:嗯|呃|那个|好的|好|请|麻烦)+"),
           re.compile(r"(?:谢谢你?|谢啦|好吗|好不好|吧|哦|啊|呀)+$")),
}
# HA intents that are not about devices or music: the dialogue node answers them
_POWER = {"HassTurnOn": True, "HassTurnOff": False, "GamginTurnOn": True,
          "GamginTurnOff": False}
_MUSIC = {"HassMediaPause": "pause", "HassMediaUnpause": "resume", "HassMediaNext": "next",
          "HassMediaPrevious": "previous"}
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
    question: bool = False  # we asked back (which device? are you sure?); nothing to do yet

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
    """Raised inside resolution to return an answer at once (question or refusal)."""

    def __init__(self, answer: IntentAnswer) -> None:
        super().__init__(answer.speech)
        self.answer = answer


class DeviceIntents:
    def __init__(self, registry: Registry | str | Path | None = None,
                 layers: tuple[str, ...] = LAYERS, sentences_dir: str | Path | None = None,
                 pending_timeout_s: float = 30.0, warm: bool = True) -> None:
        self.registry = (registry if isinstance(registry, Registry)
                         else load_registry(registry))
        self.layers = tuple(layers)
        if not set(self.layers) <= set(LAYERS) or not self.layers:
            raise ValueError(f"layers must be a non-empty subset of {LAYERS}")
        sdir = Path(sentences_dir) if sentences_dir else SENTENCES_DIR
        self.words = yaml.safe_load((sdir / "responses.yaml").read_text(encoding="utf-8"))
        self.pending_timeout_s = pending_timeout_s
        self._lock = threading.Lock()
        self._pending: _Pending | None = None
        self.last_device: str = ""
        self._intents: dict[str, Intents] = {}
        self._slots: dict[str, dict] = {}
        for short, code in LANGS.items():
            self._intents[short] = Intents.from_dict(self._sentence_data(code, sdir))
            self._slots[short] = self._slot_lists(short)
        self._t2s = _traditional_to_simplified()
        self._wake = {lang: sorted(w["wake_words"], key=len, reverse=True)
                      for lang, w in self.words.items()}
        if warm:  # first matches build hassil's caches (~100 ms each): pay at start-up
            for short in LANGS:
                for text in self.words[short].get("warm_up", ()):
                    self.handle(text, short, state={}, dry=True)

    # ------------------------------------------------------------------ setup
    def _sentence_data(self, code: str, sdir: Path) -> dict:
        import home_assistant_intents

        ha = home_assistant_intents.get_intents(code)
        if ha is None:
            raise ValueError(f"home-assistant-intents has no language {code!r}")
        data = copy.deepcopy(ha) if "ha" in self.layers else {
            k: copy.deepcopy(v) for k, v in ha.items() if k != "intents"}
        data.setdefault("intents", {})
        if "gamgin" in self.layers:
            ours = yaml.safe_load((sdir / f"{code}.yaml").read_text(encoding="utf-8"))
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

    # ------------------------------------------------------------------ entry point
    def handle(self, text: str, lang: str, state: Mapping[str, Mapping[str, float]] | None = None,
               dry: bool = False) -> IntentAnswer | None:
        """Understand one user utterance. ``None``: not a device/music command.
        ``dry``: match only, keep no conversation context (for benchmarks and warm-up)."""
        short = _short_lang(lang)
        if short is None or not text or not text.strip():
            return None
        norm = self.normalize(text, short)
        if not norm:
            return None
        with self._lock:
            pending = self._pending
            if pending is not None and pending.expires < time.monotonic():
                pending = self._pending = None
        result = self._recognize(norm, short)
        if result is None:
            head, tail = _EDGE_WORDS[short]
            core = tail.sub("", head.sub("", norm)).strip()
            if core and core != norm:
                result = self._recognize(core, short)
                norm = core if result is not None else norm
        if pending is not None and not dry:
            follow = self._follow_up(pending, result, norm, short, state or {})
            if follow is not None:
                return follow
        if result is None:
            return None
        try:
            answer = self._answer(result, short, state or {}, dry)
        except _NeedsAnswer as exc:
            answer = exc.answer
        if answer is None or dry:
            return answer
        return self._finish(answer, short)

    def _recognize(self, norm: str, short: str):
        return recognize_best(norm, self._intents[short], slot_lists=self._slots[short],
                              language=LANGS[short], best_slot_name="name")

    def _finish(self, answer: IntentAnswer, short: str) -> IntentAnswer:
        """Remember the device for "再调高一点"; hold back actions that need a spoken yes."""
        if answer.actions:
            devs = [a.device_id for a in answer.actions if a.device_id]
            if len(devs) == 1:
                self.last_device = devs[0]
            confirm = [d for d in devs if d in self.registry.devices
                       and self.registry.devices[d].needs_confirmation]
            if confirm:
                with self._lock:
                    self._pending = _Pending("confirm", time.monotonic() + self.pending_timeout_s,
                                             answer=answer)
                return IntentAnswer(self._say(short, "confirm",
                                              action=self._describe(answer, short)),
                                    short, (), answer.intent, answer.layer, question=True)
        return answer

    def normalize(self, text: str, short: str) -> str:
        text = self._t2s(text) if short == "zh" else text.lower()
        text = text.strip()
        for w in self._wake.get(short, ()):
            if text.lower().startswith(w):
                text = text[len(w):]
                break
        text = re.sub(r"(?<=\d)\.(?=\d)", "\x00", text)  # keep decimal points (26.5度)
        if short == "zh":
            text = re.sub(r"[\s，。！？、,.!?~：:；;“”\"']+", "", text)
            return text.replace("\x00", ".")
        text = re.sub(r"[,.!?;:\"“”]+", " ", text).replace("\x00", ".")
        return re.sub(r"\s+", " ", text).strip()

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
    def _answer(self, result, short: str, state: Mapping, dry: bool) -> IntentAnswer | None:
        name = result.intent.name
        ents = {k: v.value for k, v in result.entities.items()}
        meta = result.intent_metadata or {}
        layer = "gamgin" if name.startswith("Gamgin") else "ha"
        scope_all = ents.get("scope") == "all" or str(meta.get("slot_combination", "")).endswith(
            "_all")

        def done(speech: str, actions: list[DeviceAction]) -> IntentAnswer:
            return IntentAnswer(speech, short, tuple(actions), name, layer)

        if name in _POWER:
            on = _POWER[name]

            def power(devs: list[DeviceSpec], st: Mapping | None = None) -> IntentAnswer:
                names = self._join([d.name(short) for d in devs], short)
                return done(self._say(short, "turn_on" if on else "turn_off", names=names),
                            [DeviceAction("power", d.id, on=on) for d in devs])

            devs = self._targets(ents, short, None, scope_all, power, dry, plural_ok=True)
            return power(devs)
        if name in _HA_SET or name in ("GamginSetValue", "GamginSetFraction"):
            if name in _HA_SET:
                param, key, domain = _HA_SET[name]
                if key not in ents:
                    return None  # e.g. a light colour: not something our devices do
                value, fraction = float(ents[key]), None
                if "name" not in ents:
                    ents.setdefault("domain", domain)
            else:
                param = str(ents.get("param", ""))
                value = float(ents["value"]) if "value" in ents else None
                fraction = float(ents["fraction"]) if "fraction" in ents else None

            def setter(devs: list[DeviceSpec], st: Mapping | None = None) -> IntentAnswer:
                return self._set(devs, param, value, fraction, short, done, name)

            return setter(self._targets(ents, short, param or None, scope_all, setter, dry))
        if name in ("GamginSetRelative", "HassSetVolumeRelative"):
            if name == "HassSetVolumeRelative":
                param = "volume"
                step = ents.get("volume_step")
                if isinstance(step, (int, float)):
                    amount, sign = abs(float(step)), (1.0 if step >= 0 else -1.0)
                else:
                    amount, sign = None, (1.0 if step == "up" else -1.0)
            else:
                param = str(ents.get("param", ""))
                amount = float(ents["amount"]) if "amount" in ents else None
                sign = 1.0 if ents.get("direction") == "up" else -1.0

            def relative(devs: list[DeviceSpec], st: Mapping | None = None) -> IntentAnswer:
                return self._relative(devs, param, amount, sign, short,
                                      state if st is None else st, done)

            return relative(self._targets(ents, short, param or None, scope_all, relative, dry,
                                          use_last=True))
        if name == "GamginMusicPlay":
            query = str(ents.get("query", "")).strip()
            return done(self._say(short, "music_play_query" if query else "music_play",
                                  query=query),
                        [DeviceAction("music", "music", command="play", query=query)])
        if name in _MUSIC or name in ("GamginMusicStop", "GamginMusicControl"):
            cmd = _MUSIC.get(name) or str(ents.get("command", "stop"))
            return done(self._say(short, f"music_{cmd}"), [DeviceAction("music", "music",
                                                                         command=cmd)])
        if name in ("HassGetState", "HassClimateGetTemperature", "GamginGetValue"):
            return self._query(name, ents, short, state, dry, done)
        if name in ("GamginConfirm", "GamginDeny", "HassNevermind"):
            return None  # a yes/no with nothing pending is small talk, not a command
        return None  # timers, weather, ...: not ours

    def _query(self, name: str, ents: dict, short: str, state: Mapping, dry: bool,
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
            devs = self._targets(ents, short, param, "name" not in ents, answer, dry,
                                 plural_ok=True)
        except _NeedsAnswer:
            return None
        return answer(devs)

    def _targets(self, ents: dict, short: str, param: str | None, scope_all: bool,
                 complete: Callable[..., IntentAnswer], dry: bool, plural_ok: bool = False,
                 use_last: bool = False) -> list[DeviceSpec]:
        """The devices a command is about, or _NeedsAnswer (a question or "not found")."""
        devices = list(self.registry.devices.values())
        if "name" in ents:
            return [self.registry.devices[ents["name"]]]
        area, domain = ents.get("area"), ents.get("domain")
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
        if use_last and self.last_device in {d.id for d in cands}:
            return [self.registry.devices[self.last_device]]
        options = self._join([d.name(short) for d in cands], short, last_key="or")
        key = "ask_which" if domain else "ask_device"
        what = self.words[short]["domains"].get(domain, "") if domain else ""
        if not dry:  # a benchmark or warm-up must not leave a question open
            with self._lock:
                self._pending = _Pending("clarify", time.monotonic() + self.pending_timeout_s,
                                         candidates=cands, complete=complete)
        raise _NeedsAnswer(IntentAnswer(self._say(short, key, what=what, options=options),
                                        short, (), "", "", question=True))

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
