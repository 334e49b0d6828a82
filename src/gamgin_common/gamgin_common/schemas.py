"""ROS 2 message definitions as Foxglove/MCAP "ros2msg" schemas. Pure Python.

A ros2msg schema is the type's .msg text followed by the text of every type it uses,
each introduced by a line of 80 '=' and ``MSG: pkg/Type`` -- the same layout rosbag2
writes into MCAP files, so Foxglove and Lichtblick decode the CDR payloads with it.
The .msg files come from ``share/<pkg>/msg/`` of the ament prefixes (the PyPI wheels and
colcon both install them there).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

PRIMITIVES = {
    "bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16",
    "int32", "uint32", "int64", "uint64", "string", "wstring",
}
SEPARATOR = "=" * 80
_FIELD = re.compile(r"^\s*([A-Za-z][\w/]*)(?:<=\d+)?(?:\[[^\]]*\])?\s+\w+")


def ament_prefixes() -> list[Path]:
    return [Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]


def normalize(type_name: str) -> str:
    """"pkg/msg/Type" or "pkg/Type" -> "pkg/msg/Type"."""
    parts = type_name.split("/")
    if len(parts) == 2:
        return f"{parts[0]}/msg/{parts[1]}"
    if len(parts) == 3:
        return type_name
    raise ValueError(f"not a ROS message type name: {type_name!r}")


def find_definition(type_name: str, prefixes: list[Path] | None = None) -> str:
    pkg, _, name = normalize(type_name).split("/")
    for prefix in prefixes if prefixes is not None else ament_prefixes():
        path = prefix / "share" / pkg / "msg" / f"{name}.msg"
        if path.is_file():
            return path.read_text(encoding="utf-8")
    raise FileNotFoundError(f"definition of {type_name} not found under the ament prefixes")


def dependencies(definition: str, own_package: str) -> list[str]:
    """Complex field types used by a .msg text, as pkg/msg/Type, in order of appearance."""
    deps: list[str] = []
    for line in definition.splitlines():
        line = line.split("#", 1)[0]
        m = _FIELD.match(line)
        if not m or "=" in line.split()[1 if len(line.split()) > 1 else 0]:
            continue  # comments, blank lines, constants
        t = m.group(1)
        if t in PRIMITIVES:
            continue
        if t == "Header":
            t = "std_msgs/Header"
        full = normalize(t if "/" in t else f"{own_package}/{t}")
        if full not in deps:
            deps.append(full)
    return deps


def ros2msg_schema(type_name: str, prefixes: list[Path] | None = None) -> str:
    """The full ros2msg schema text of a type, dependencies resolved depth-first."""
    root = normalize(type_name)
    text = find_definition(root, prefixes)
    seen = {root}
    order: list[str] = []
    stack = list(reversed(dependencies(text, root.split("/")[0])))
    while stack:
        t = stack.pop()
        if t in seen:
            continue
        seen.add(t)
        order.append(t)
        stack.extend(reversed(dependencies(find_definition(t, prefixes), t.split("/")[0])))
    parts = [text.rstrip("\n")]
    for t in order:
        pkg, _, name = t.split("/")
        parts += [SEPARATOR, f"MSG: {pkg}/{name}", find_definition(t, prefixes).rstrip("\n")]
    return "\n".join(parts) + "\n"


def message_class(type_name: str):
    """"pkg/msg/Type" -> the generated Python class (imports the package's msg module)."""
    import importlib

    pkg, _, name = normalize(type_name).split("/")
    return getattr(importlib.import_module(f"{pkg}.msg"), name)
