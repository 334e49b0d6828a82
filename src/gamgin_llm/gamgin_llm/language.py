"""What the robot may say: language detection, speakable text, degenerate replies, honest lines.

Pure Python. The packaged model is tiny and English-only, so every reply passes a gate
that checks it is in the user's language and is not a loop before (or while) it is spoken.
"""

from __future__ import annotations

import re
import unicodedata

# Lines spoken instead of a model reply. Short, honest, in the user's language.
LINES: dict[str, dict[str, str]] = {
    "wrong_language": {
        "zh": "抱歉，我现在的小模型只会说英语，还不能用中文好好聊天。",
        "en": "Sorry, my small brain can't answer that properly in English yet.",
    },
    "degenerate": {
        "zh": "抱歉，我没想好怎么回答。",
        "en": "Sorry, I don't have a good answer for that.",
    },
    "empty_input": {
        "zh": "我没听清，请再说一遍。",
        "en": "I didn't catch that. Could you say it again?",
    },
    "unreachable": {
        "zh": "抱歉，我的大脑现在连不上，请稍后再试。",
        "en": "Sorry, I can't reach my brain right now. Please try again in a moment.",
    },
    "timeout": {
        "zh": "抱歉，我想得太久了，请再问一次。",
        "en": "Sorry, I took too long to think. Please ask again.",
    },
    "model": {
        "zh": "抱歉，我的语言模型没有加载好。",
        "en": "Sorry, my language model is not loaded.",
    },
    "overflow": {
        "zh": "抱歉，这段话太长了，能说短一点吗？",
        "en": "Sorry, that was too long for me. Could you say it shorter?",
    },
    "error": {
        "zh": "抱歉，我出了点问题，请再试一次。",
        "en": "Sorry, something went wrong. Please try again.",
    },
    "tool_failed": {
        "zh": "抱歉，没办成：{reason}",
        "en": "Sorry, that didn't work: {reason}",
    },
    # the model wanted to act on a device the user's words did not name
    "which_device": {
        "zh": "你是想控制哪个设备？",
        "en": "Which device do you mean?",
    },
    "which_device_of": {
        "zh": "你是想控制哪个设备？{options}？",
        "en": "Which device do you mean: {options}?",
    },
    "which_param": {
        "zh": "你想调{name}的什么？{options}？",
        "en": "What should I change on the {name}: {options}?",
    },
    # the model's only idea was an action nobody asked for (an unclear transcript)
    "unclear": {
        "zh": "我没太听明白，能再说一遍吗？",
        "en": "I'm not sure what you mean. Could you say it again?",
    },
    # a question about the owner's own life that no document answers
    "dont_know": {
        "zh": "我不知道，你的资料里没有写。",
        "en": "I don't know. It isn't in your notes or documents.",
    },
}


def line(kind: str, lang: str, **fmt: str) -> str:
    table = LINES.get(kind, LINES["error"])
    text = table.get(lang) or table["en"]
    return text.format(**fmt) if fmt else text


def is_cjk(ch: str) -> bool:
    o = ord(ch)
    return (0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0x20000 <= o <= 0x2A6DF
            or 0xF900 <= o <= 0xFAFF)


def cjk_ratio(text: str) -> float:
    """Share of CJK ideographs among the letters (punctuation, digits, spaces ignored)."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.0
    return sum(1 for c in letters if is_cjk(c)) / len(letters)


def detect_language(text: str, hint: str = "") -> str:
    """"zh" or "en". A Chinese utterance with an English device name still counts as Chinese:
    each ideograph carries about a word, so a ratio of 0.3 already means mostly Chinese."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return "zh" if hint.lower().startswith("zh") else "en"
    return "zh" if cjk_ratio(text) >= 0.3 else "en"


def in_language(text: str, lang: str) -> bool:
    """Is this reply in the user's language? Judged on letters only."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return False
    r = cjk_ratio(text)
    return r >= 0.5 if lang == "zh" else r < 0.2


# ---------------------------------------------------------------- speakable text
_MARKUP = re.compile(r"[*_#`~|>\[\]{}]+")  # braces: JSON fragments are not speech
_URL = re.compile(r"https?://\S+")
_BULLET = re.compile(r"^\s*(?:[-•*+]|\d+[.)])\s+")


def _speakable_char(ch: str) -> bool:
    cat = unicodedata.category(ch)
    # So = emoji and pictographs; Cs/Co/Cn = surrogates, private use, unassigned
    return cat not in ("So", "Cs", "Co", "Cn") and ch not in "\ufe0f\u200d"


class SpeakableFilter:
    """Streams text through: drops markdown, list bullets, URLs, code fences and emoji, and
    turns line breaks into spaces, so the TTS reads words only. Keeps state across pieces
    because a token can end in the middle of a line."""

    def __init__(self) -> None:
        self._line_start = True
        self._pending = ""  # start of a line, held until we know whether it is a bullet

    def push(self, piece: str) -> str:
        out = []
        for ch in piece:
            if ch in "\r\n":
                if self._pending:
                    out.append(self._flush_pending())
                if out and not "".join(out).endswith(" "):
                    out.append(" ")
                self._line_start = True
                continue
            if self._line_start:
                self._pending += ch
                if len(self._pending) >= 4 or (not ch.isspace() and not ch.isdigit()
                                               and ch not in "-•*+.)"):
                    out.append(self._flush_pending())
                continue
            out.append(ch)
        return self._clean("".join(out))

    def finish(self) -> str:
        return self._clean(self._flush_pending()) if self._pending else ""

    def _flush_pending(self) -> str:
        text, self._pending, self._line_start = self._pending, "", False
        return _BULLET.sub("", text)

    @staticmethod
    def _clean(text: str) -> str:
        text = _URL.sub("", text)
        text = _MARKUP.sub("", text)
        return "".join(c for c in text if _speakable_char(c))


def speakable(text: str) -> str:
    f = SpeakableFilter()
    return re.sub(r"\s{2,}", " ", (f.push(text) + f.finish())).strip()


# ---------------------------------------------------------------- degenerate replies
_SENT_END = re.compile(r"(?<=[.!?。！？])\s*")


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENT_END.split(text) if s.strip()]


def repeats(text: str) -> int | None:
    """Character offset where the reply starts repeating itself (a sentence said before, or a
    short phrase looping), or None. Small models loop; a loop must not reach the speaker."""
    seen: set[str] = set()
    pos = 0
    for m in re.finditer(r"[^.!?。！？]+[.!?。！？]+", text):
        sent = re.sub(r"\W+", " ", m.group(0)).strip().lower()
        if sent and sent in seen:
            return pos
        seen.add(sent)
        pos = m.end()
    # a phrase looping without sentence ends: "I'm sorry, I'm sorry, I'm sorry"
    m = re.search(r"(.{4,40}?)(?:[\s,，、]*\1){2,}", text)
    if m:
        return m.start() + len(m.group(1))
    return None


def is_degenerate(text: str) -> bool:
    """Empty, no letters, or mostly a loop."""
    letters = [c for c in text if c.isalpha()]
    if len(letters) < 2:
        return True
    cut = repeats(text)
    return cut is not None and cut < len(text) * 0.2
