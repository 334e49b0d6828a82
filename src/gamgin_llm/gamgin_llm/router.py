"""Seams in front of the LLM: fast-path handlers and a knowledge retriever, plugged in by
dotted name from parameters, so other packages (gamgin_devices, a knowledge package) add
behaviour without this package importing them.

Pure Python.

A fast-path handler is any object with ``handle(text, lang) -> FastAnswer | None``. It is
built from a dotted name ``"package.module:Factory"``; the factory is called with no
arguments, or with a ``HandlerContext`` if it takes one. A handler that returns a
``FastAnswer`` answers the turn without the LLM: its ``actions`` (tool calls such as
``set_power``) run through the tool registry, then ``text`` is spoken. A ``rest`` on it is
the part of the utterance the handler did not take ("tell me a joke" in "turn off the fan
and tell me a joke"): the dialogue then answers it with the paths after that handler (later
fast paths, knowledge, the LLM) and the reply carries both.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from gamgin_common.plugins import import_dotted
from gamgin_llm.chat import ToolCall


@dataclass
class FastAnswer:
    text: str  # spoken confirmation, in the user's language
    actions: list[ToolCall] = field(default_factory=list)  # run before speaking, in order
    route: str = "intent"  # TokenChunk.route to report
    failure_text: str = ""  # spoken if an action fails ("" = a generic line with the reason)
    best_effort: bool = False  # True: speak ``text`` even if an action fails
    stop_speaking: bool = False  # the user asked for silence (the new turn already cut speech)
    rest: str = ""  # the part of the utterance still to answer after ``text`` ("" = none)


@runtime_checkable
class FastPath(Protocol):
    def handle(self, text: str, lang: str) -> FastAnswer | None:
        """An answer when this handler understands the utterance, else None (fall through)."""


@dataclass
class Passage:
    text: str  # what the model may quote
    source: str = ""  # document / section, for logs
    score: float = 0.0  # retriever's relevance, higher is better


@runtime_checkable
class Retriever(Protocol):
    def retrieve(self, query: str, lang: str, k: int) -> list[Passage]:
        """Up to k passages relevant to the query, best first; [] when nothing is relevant."""


@runtime_checkable
class CheckingRetriever(Retriever, Protocol):
    """A retriever that can also check a drafted reply and answer without the model. The
    dialogue then never speaks a knowledge-backed draft that drops the passage's facts."""

    def supports(self, reply: str, passages: list[Passage], query: str) -> bool:
        """Does the reply carry what the passages say in answer to the query?"""

    def answer_extractively(self, query: str, passages: list[Passage], lang: str) -> str:
        """The best matching sentence, spoken naturally with its source."""


@dataclass
class HandlerContext:
    """What a plugged-in handler may use: the tool names it can put in ``actions``, the
    known devices, refreshed as devices/state arrives: id -> {"name_en", "name_zh", "room",
    "type", "on", "params" (names), "values" (name -> current value)}, and the robot's room."""

    tools: list[str] = field(default_factory=list)
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    # where the robot is, as the latched topic robot/room last said (a room id or name;
    # "" = unknown); None = nothing heard, a handler keeps its configured default
    robot_room: str | None = None


def load_object(dotted: str, context: HandlerContext | None = None, **kwargs: Any) -> Any:
    """Build ``package.module:Name``. A class or factory gets ``context`` if its signature
    takes one; an already-built object is returned as is."""
    obj = import_dotted(dotted)
    if not (inspect.isclass(obj) or inspect.isfunction(obj)):
        return obj  # already an instance
    params = list(inspect.signature(obj).parameters.values())
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    takes_context = any(p.name == "context" for p in params) or bool(
        params and params[0].kind in positional and params[0].default is inspect.Parameter.empty
        and params[0].name not in kwargs)
    return obj(context, **kwargs) if takes_context else obj(**kwargs)


# ---------------------------------------------------------------- the built-in stop handler
_STOP_ZH = ("安静", "别说了", "闭嘴", "停", "停下", "停止", "别讲了", "不要说了", "嘘", "够了")
_STOP_EN = ("stop", "be quiet", "quiet", "shut up", "silence", "enough", "stop talking",
            "that's enough", "hush", "cancel")
_FILLER_ZH = re.compile(r"^(金坚|请|你|先|给我|好了|好|吧|啦|一下|一点|了|呀|啊)+|"
                        r"(吧|啦|了|呀|啊|一下|一点|好吗|好不好)+$")
_FILLER_EN = re.compile(r"^(ok(ay)?|hey|please|jinjian|now)\b\s*|\s*\b(please|now|it)$")


class StopHandler:
    """"stop" / "安静" / "别说了": silence at once, confirm briefly, and stop music if a music
    tool is registered. Only whole short utterances match: "stop the fan" is a device command."""

    def __init__(self, context: HandlerContext | None = None) -> None:
        self.music = context is not None and "stop_music" in context.tools

    def handle(self, text: str, lang: str) -> FastAnswer | None:
        s = re.sub(r"[\s\W_]+", " ", text.lower()).strip()
        if not s or len(s) > 24:
            return None
        zh = s.replace(" ", "")
        for _ in range(3):  # "金坚你先安静一下吧" -> "安静"
            zh = _FILLER_ZH.sub("", zh)
        en = s
        for _ in range(3):
            en = _FILLER_EN.sub("", en).strip()
        if s.replace(" ", "") in _STOP_ZH or zh in _STOP_ZH or s in _STOP_EN or en in _STOP_EN:
            actions = [ToolCall("stop_music", {})] if self.music else []
            return FastAnswer(text="好的。" if lang == "zh" else "Okay.", actions=actions,
                              best_effort=True, stop_speaking=True)
        return None
