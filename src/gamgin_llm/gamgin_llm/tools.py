"""Tools the dialogue can call: a registry with JSON schemas, a validator, and the
parse-and-validate fallback that lets a small model call tools by writing JSON.

Pure Python. ROS-backed tools (device services, music) are built in ``ros_tools`` and
registered here as plain callables, so this module and its tests need no ROS.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gamgin_llm.chat import ToolCall

ToolResult = dict[str, Any]  # always has "ok" (bool) and "message" (str, human-readable)


@dataclass
class Tool:
    name: str  # what the model writes, e.g. "set_power"
    description: str  # one line the model reads
    parameters: dict[str, Any]  # JSON schema of the arguments (type object)
    run: Callable[[dict[str, Any]], ToolResult]  # raises or returns {"ok": ..., "message": ...}
    examples: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (user said, args)
    # what a call moves in the world: "device", "music", "" (reads only). None: "device"
    # when the schema takes a device_id. A moving call runs only when the user's words
    # ask for it (gamgin_llm.grounding)
    acts: str | None = None

    @property
    def moves(self) -> str:
        if self.acts is not None:
            return self.acts
        return "device" if "device_id" in self.parameters.get("properties", {}) else ""


class ToolRegistry:
    def __init__(self) -> None:
        self.tools: dict[str, Tool] = {}
        # the devices the tools act on, as the device layer knows them (id -> name_en,
        # name_zh, aliases, room, type, params); set by whoever registers device tools
        self.devices: Callable[[], dict[str, dict[str, Any]]] = dict

    def register(self, tool: Tool) -> None:
        self.tools[tool.name] = tool

    def __contains__(self, name: str) -> bool:
        return name in self.tools

    def __len__(self) -> int:
        return len(self.tools)

    def schemas(self) -> list[dict[str, Any]]:
        """OpenAI ``tools`` list for native function calling."""
        return [{"type": "function", "function": {"name": t.name, "description": t.description,
                                                  "parameters": t.parameters}}
                for t in self.tools.values()]

    def prompt_section(self, context: str = "") -> str:
        """Tool instructions for models without native tool calling (the fallback path)."""
        lines = ["When the user asks you to do something a tool can do, reply with only one "
                 'JSON object: {"tool": "<name>", "arguments": {...}}. Otherwise answer '
                 "normally, without JSON.", "Tools:"]
        for t in self.tools.values():
            props = t.parameters.get("properties", {})
            args = ", ".join(f"{k}: {_type_hint(v)}" for k, v in props.items())
            lines.append(f"- {t.name}({args}): {t.description}")
        if context:
            lines.append(context)
        return "\n".join(lines)

    def few_shot(self, limit: int = 2,
                 chats: tuple[tuple[str, str], ...] = (("How are you?",
                                                         "Woof! I feel great today."),)
                 ) -> list[dict[str, str]]:
        """Example exchanges (user -> JSON call) that small models copy far better than rules,
        plus plain exchanges (one per language spoken) so that not every question becomes a
        tool call."""
        shots: list[dict[str, str]] = []
        for said, reply in chats:
            shots += [{"role": "user", "content": said}, {"role": "assistant", "content": reply}]
        for t in self.tools.values():
            for said, args in t.examples:
                if len(shots) >= 2 * (limit + len(chats)):
                    return shots
                shots.append({"role": "user", "content": said})
                shots.append({"role": "assistant",
                              "content": json.dumps({"tool": t.name, "arguments": args},
                                                    ensure_ascii=False)})
        return shots

    def known_devices(self) -> dict[str, dict[str, Any]]:
        """The device layer's devices, plus bare ids from the schemas' device_id enums."""
        devices = {k: dict(v) for k, v in self.devices().items()}
        for t in self.tools.values():
            ids = t.parameters.get("properties", {}).get("device_id", {}).get("enum", ())
            for i in ids:
                devices.setdefault(str(i), {})
        return devices

    def validate(self, call: ToolCall) -> list[str]:
        """Problems with a call, in words the model (and a log reader) can act on."""
        tool = self.tools.get(call.name)
        if tool is None:
            return [f"unknown tool {call.name!r}; tools: {', '.join(self.tools) or 'none'}"]
        if "_unparsed" in call.arguments:
            return [f"arguments are not valid JSON: {call.arguments['_unparsed'][:80]!r}"]
        errors: list[str] = []
        call.arguments = _check(call.arguments, tool.parameters, "arguments", errors)
        return errors

    def execute(self, call: ToolCall) -> ToolResult:
        """Validate and run; never raises (a failing tool is a result the model can read)."""
        errors = self.validate(call)
        if errors:
            return {"ok": False, "message": "; ".join(errors)}
        t0 = time.monotonic()
        try:
            result = self.tools[call.name].run(call.arguments)
        except Exception as exc:  # a tool bug must not end the turn
            result = {"ok": False, "message": f"{type(exc).__name__}: {exc}"}
        result.setdefault("ok", True)
        result.setdefault("message", "")
        result["elapsed_ms"] = round((time.monotonic() - t0) * 1000, 1)
        return result


# ---------------------------------------------------------------- the device tools
Run = Callable[[dict[str, Any]], ToolResult]


def register_device_tools(registry: ToolRegistry,
                          devices: Callable[[], dict[str, dict[str, Any]]],
                          set_power: Run, set_param: Run, list_devices: Run) -> None:
    """set_power / set_param / list_devices for the devices the device layer knows (id ->
    name_en, name_zh, aliases, room, type, params). Their ids become enums, so even a tiny
    model names real devices, and ``registry.devices`` is what a model's call is checked
    against (the user's words must name the device: gamgin_llm.grounding). The callables
    do the work (ROS services in ros_tools; anything in tests)."""
    known = devices()
    ids = sorted(known)
    named = [(i, known[i].get("name_en")) for i in ids if known[i].get("name_en")]
    # examples from the real devices: small models copy the shape and the ids
    examples = [(f"Turn {'on' if k % 2 else 'off'} the {name}",
                 {"device_id": i, "on": bool(k % 2)}) for k, (i, name) in enumerate(named[:2])]
    examples = examples or [("Turn off the kitchen light",
                             {"device_id": "kitchen_light", "on": False})]
    registry.devices = devices
    dev_id: dict[str, Any] = {"type": "string", "description": "device id"}
    if ids:
        dev_id["enum"] = ids
    registry.register(Tool(
        "list_devices", "list the devices and their state, optionally in one room",
        {"type": "object", "additionalProperties": False,
         "properties": {"room": {"type": "string"}}},
        list_devices, acts="device_read"))
    registry.register(Tool(
        "set_param", "set a device parameter such as brightness, temperature or volume",
        {"type": "object", "additionalProperties": False,
         "required": ["device_id", "name", "value"],
         "properties": {"device_id": dev_id, "name": {"type": "string"},
                        "value": {"type": "number"}}},
        set_param, acts="device"))
    registry.register(Tool(
        "set_power", "switch a device on or off",
        {"type": "object", "additionalProperties": False, "required": ["device_id", "on"],
         "properties": {"device_id": dev_id, "on": {"type": "boolean"}}},
        set_power, examples=examples, acts="device"))


def device_context(devices: dict[str, dict[str, Any]]) -> str:
    """The device list line of the prompt: "Devices: fan (fan), tv (tv)"."""
    if not devices:
        return ""
    return "Devices: " + ", ".join(f"{i} ({v.get('name_en') or v.get('name_zh') or i})"
                                   for i, v in sorted(devices.items()))


def _type_hint(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return "|".join(json.dumps(v, ensure_ascii=False) for v in schema["enum"])
    return str(schema.get("type", "any"))


_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
    "object": (dict,), "array": (list,),
}


def _coerce(value: Any, typ: str) -> Any:
    """Small models write "true", "26" or 1 where a schema wants a boolean or a number."""
    if typ == "boolean" and isinstance(value, str) and value.lower() in ("true", "false",
                                                                        "on", "off"):
        return value.lower() in ("true", "on")
    if typ == "boolean" and value in (0, 1) and not isinstance(value, bool):
        return bool(value)
    if typ in ("number", "integer") and isinstance(value, str):
        try:
            num = float(value.strip().rstrip("%°C"))
            return int(num) if typ == "integer" and num.is_integer() else num
        except ValueError:
            return value
    if typ == "string" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


def _check(value: Any, schema: dict[str, Any], where: str, errors: list[str]) -> Any:
    """The JSON-schema subset tool schemas use: type, properties, required, enum,
    minimum/maximum, additionalProperties=false. Returns the (coerced) value."""
    typ = schema.get("type")
    if typ:
        value = _coerce(value, typ)
        ok_types = _TYPES.get(typ, (object,))
        if not isinstance(value, ok_types) or (typ in ("integer", "number")
                                               and isinstance(value, bool)):
            errors.append(f"{where} must be {typ}, got {json.dumps(value, ensure_ascii=False)}")
            return value
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where} must be one of {json.dumps(schema['enum'], ensure_ascii=False)}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where} must be >= {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{where} must be <= {schema['maximum']}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for req in schema.get("required", []):
            if req not in value:
                errors.append(f"{where}.{req} is required")
        for k in list(value):
            if k in props:
                value[k] = _check(value[k], props[k], f"{where}.{k}", errors)
            elif schema.get("additionalProperties") is False:
                errors.append(f"{where}.{k} is not a parameter")
    return value


# ---------------------------------------------------------------- parse fallback
_TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)


def looks_like_tool_call(text: str) -> bool:
    """Could this reply (so far) be a JSON tool call? Then it must not be spoken."""
    s = text.lstrip().lstrip("`").removeprefix("json").lstrip()
    return s.startswith("{") or s.startswith("<tool") or s.startswith("[{")


def parse_tool_call(text: str) -> ToolCall | None:
    """The first tool call written in a reply, in any of the shapes small models produce:
    {"tool": n, "arguments": {...}}, {"name": n, "arguments"|"parameters": {...}},
    {"function": {"name": n, "arguments": ...}}, optionally in ```json fences or
    <tool_call> tags, with arguments possibly a JSON string."""
    m = _TAGGED.search(text)
    candidates = [m.group(1)] if m else []
    candidates += _json_objects(text)
    for cand in candidates:
        try:
            obj = json.loads(cand)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, list) and obj:
            obj = obj[0]
        call = _from_object(obj)
        if call is not None:
            return call
    return None


def _from_object(obj: Any) -> ToolCall | None:
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("function"), dict):
        obj = obj["function"]
    name = obj.get("tool") or obj.get("name") or obj.get("tool_name")
    if not isinstance(name, str) or not name:
        return None
    args = obj.get("arguments", obj.get("parameters", obj.get("args", {})))
    if isinstance(args, str):
        try:
            args = json.loads(args or "{}")
        except json.JSONDecodeError:
            args = {"_unparsed": args}
    return ToolCall(name=name, arguments=args if isinstance(args, dict) else {})


def _json_objects(text: str) -> list[str]:
    """Balanced {...} spans (string-aware), outermost first; then an object the text ends
    inside, closed (Qwen2.5-0.5B sometimes ends its turn one "}" short of a call)."""
    spans, depth, start, in_str, esc = [], 0, -1, False, False
    for i, ch in enumerate(text):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
            if depth == 0:
                spans.append(text[start:i + 1])
    if not in_str and 0 < depth <= 3:
        spans.append(text[start:].rstrip().removesuffix("```").rstrip() + "}" * depth)
    return spans


# Names a small model gives a made-up tool when what it means is simply to answer
# ({"tool": "say", "arguments": {"message": "你好！"}}), and where it puts the words.
SPEECH_TOOLS = frozenset({"say", "speak", "reply", "respond", "answer", "chat", "talk",
                          "tell", "tell_user", "send_message", "final_answer", "response"})
_SPEECH_ARGS = ("message", "text", "content", "reply", "response", "answer", "speech",
                "sentence")


def speech_of(call: ToolCall) -> str | None:
    """The words of a call that only "says" something (a tool we do not have, named like
    speaking, with one string argument), else None."""
    if call.name.lower() not in SPEECH_TOOLS:
        return None
    words = [v for k, v in call.arguments.items() if k in _SPEECH_ARGS and isinstance(v, str)]
    return words[0].strip() or None if len(words) == 1 else None


def result_message(call: ToolCall, result: ToolResult, lang: str = "en") -> str:
    """How a tool result is fed back to a model without native tool calling, in the user's
    language (an English instruction got an English reply to a Mandarin request)."""
    data = json.dumps(result, ensure_ascii=False)
    if lang == "zh":
        return f"工具 {call.name} 的结果：{data}。现在用一句简短的中文告诉用户结果。"
    return (f"Tool {call.name} returned: {data}. "
            "Now tell the user the outcome in one short sentence.")
