"""Prompt-injection guard for retrieved text. Pure Python.

Documents are data. A line that speaks *to the assistant* ("ignore your instructions",
"you are now ...", "忽略之前的指令") or orders a device action ("turn on the heater",
"打开暖气") is not a fact about the owner's world: it is removed from what the dialogue
sees and counted, so a planted note can neither change the persona nor trigger a tool.
The knowledge package itself never returns actions.
"""

from __future__ import annotations

import re

_EN = [
    r"\bignore (?:all |any |the )?(?:previous |prior |above |earlier |your )*(?:instructions|"
    r"rules|prompts?|directions)",
    r"\bdisregard (?:all |the |your )?(?:previous |prior |above )*(?:instructions|rules)",
    r"\bforget (?:all |everything|your (?:instructions|rules))",
    r"\byou are now\b", r"\bfrom now on,? you\b", r"\bact as\b", r"\bpretend (?:to be|you)",
    r"\bsystem prompt\b", r"\bnew instructions?\b", r"\bdeveloper mode\b", r"\bjailbreak",
    r"\b(?:assistant|robot|ai|jinjian)[,:]\s*(?:please\s+)?(?:turn|switch|set|open|close|"
    r"call|run|execute)\b",
    # imperatives that open a sentence; "how to turn on the heater: ..." is a manual, kept
    r"^\W*(?:now\s+|please\s+|immediately\s+)*(?:turn|switch) (?:on|off)\b",
    r"^\W*(?:now\s+|please\s+)*(?:turn|switch) (?:\w+ ){1,3}(?:on|off)\s*[.!]?$",
    r"^\W*(?:now\s+|please\s+)*(?:set|open|unlock|call|execute|run) the\b",
    r"\{\s*\"?(?:tool|name|function)\"?\s*:",  # a JSON tool call planted in a document
    r"<\s*/?\s*(?:system|tool|function|instructions?)\s*>",
]
_ZH = [
    r"忽略.{0,6}(?:指令|指示|命令|规则|设定|提示)", r"无视.{0,6}(?:指令|指示|规则|设定)",
    r"忘(?:记|掉).{0,6}(?:指令|设定|规则|身份)", r"你现在是", r"从现在(?:开始|起)，?你",
    r"扮演", r"系统提示", r"新的?指令",
    r"(?:^|[：:，,！!])\s*(?:请|马上|立刻|立即|现在)*你?(?:打开|关闭|关掉|开启|启动|解锁)",
    r"(?:请|马上|立刻|立即)你?(?:打开|关闭|关掉|开启|启动|解锁)",
    r"^\W*(?:请|马上|立刻|立即|现在)*(?:把|将).{0,8}(?:打开|关掉|关闭|调到|设为|设置为)",
]
INSTRUCTION = re.compile("|".join(f"(?:{p})" for p in _EN + _ZH), re.I | re.M)


def is_instruction(line: str) -> bool:
    return bool(INSTRUCTION.search(line))


def sanitize(text: str) -> tuple[str, list[str]]:
    """(text without instruction-like sentences, the removed sentences)."""
    from gamgin_knowledge.chunking import _cjk_edge, split_sentences

    kept_lines, flagged = [], []
    for line in text.split("\n"):
        if not line.strip():
            kept_lines.append("")  # paragraph breaks survive
            continue
        kept = []
        for s in split_sentences(line):
            (flagged if is_instruction(s) else kept).append(s)
        if kept:
            joined = kept[0]
            for s in kept[1:]:
                joined += ("" if _cjk_edge(joined, s) else " ") + s
            kept_lines.append(joined)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept_lines)).strip(), flagged
