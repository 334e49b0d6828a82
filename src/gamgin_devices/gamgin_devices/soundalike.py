"""Words that sound like the home's vocabulary, put back in a Chinese transcript. Pure Python.

Whisper writes a device or room it did not quite hear as another word of the same sound:
卧室 as 握式, 电视 as 垫式, 调高 as 掉高, 热水器 as 热水气. Mandarin has few syllables and
many characters per syllable, so the sound survives when the characters do not. This
module knows the home's words (rooms, device names and aliases from config/devices.yaml,
and the words commands are made of) by their toneless pinyin, loosened where Mandarin
speakers and recognizers commonly merge sounds (zh/z, ch/c, sh/s, n/l, -ng/-n), and
replaces a span of the transcript that sounds exactly like one of them.

Only words of two or more characters are replaced: one syllable matches too much (灯 deng
is also 等 "wait"). The caller only uses the corrected text when the original did not
parse as a command and the corrected one does, so chat that merely sounds like a device
("我有点事" ~ 电视) is never changed.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable

from gamgin_common.zh_words import readings

_HAN = re.compile(r"[\u3400-\u9fff]")
# the words home-control commands are made of, besides the home's own names
COMMAND_WORDS = (
    "打开", "开启", "关掉", "关闭", "关上", "调高", "调低", "调到", "调成", "调亮", "调暗",
    "调大", "调小", "开大", "关小", "升高", "降低", "亮度", "温度", "音量", "声音", "风速",
    "灯光", "电灯", "空调", "冷气", "风扇", "电扇", "电视", "热水器", "音乐",
)
MAX_READINGS = 32  # spans whose characters have more reading combinations are skipped


def _loose(syllable: str) -> str:
    """A syllable with the distinctions that speech recognition often loses merged."""
    for a, b in (("zh", "z"), ("ch", "c"), ("sh", "s")):
        if syllable.startswith(a):
            syllable = b + syllable[2:]
            break
    if syllable.startswith("n"):
        syllable = "l" + syllable[1:]
    if syllable.endswith("ng") and not syllable.endswith("ong"):
        syllable = syllable[:-1]
    return syllable


def keys(span: str) -> list[tuple[str, ...]]:
    """Every loose reading of the span (a character with two readings gives two keys);
    [] when it is not all Han or has too many combinations."""
    per_char = [tuple(dict.fromkeys(_loose(r) for r in readings(c))) for c in span]
    if not per_char or not all(per_char):
        return []
    total = 1
    for options in per_char:
        total *= len(options)
    if total > MAX_READINGS:
        return []
    return list(itertools.product(*per_char))


class SoundAlike:
    """``is_word``: a span that is itself a word of the language is left alone (两度 "two
    degrees" sounds like 亮度 "brightness"; 风水 is not a misheard 风扇)."""

    def __init__(self, words: Iterable[str],
                 is_word: Callable[[str], bool] = lambda _s: False) -> None:
        self.is_word = is_word
        self.words = {w for w in words if len(w) >= 2 and all(_HAN.match(c) for c in w)}
        self._by_key: dict[tuple[str, ...], str] = {}
        for w in sorted(self.words, key=lambda w: (-len(w), w)):
            for k in keys(w):
                self._by_key.setdefault(k, w)
        self._lengths = sorted({len(w) for w in self.words}, reverse=True)

    def correct(self, text: str) -> str:
        """The text with each span that sounds like a known word (and is not one) replaced,
        longest words first, left to right."""
        out: list[str] = []
        i = 0
        while i < len(text):
            for n in self._lengths:
                span = text[i:i + n]
                if len(span) < n:
                    continue
                if span in self.words:
                    out.append(span)
                    break
                word = None if self.is_word(span) else next(
                    (self._by_key[k] for k in keys(span) if k in self._by_key), None)
                if word is not None:
                    out.append(word)
                    break
            else:
                out.append(text[i])
                i += 1
                continue
            i += len(out[-1])
        return "".join(out)


def for_registry(registry) -> SoundAlike:
    """The home's sound-alikes, with jieba's dictionary deciding what is already a word."""
    import jieba

    words = home_words(registry)  # installs the shared dictionary first
    return SoundAlike(words, is_word=lambda s: bool(jieba.dt.FREQ.get(s)))


def home_words(registry) -> set[str]:
    """Rooms, device names and aliases of the registry (Chinese), with their jieba words,
    and the command words."""
    import jieba

    from gamgin_common import zh_words

    zh_words.install()
    names: set[str] = set(COMMAND_WORDS)
    for room in registry.rooms.values():
        names.update([room.name_zh, *room.aliases_zh])
    for d in registry.devices.values():
        names.update([d.name_zh, *d.aliases_zh])
    for name in list(names):
        names.update(jieba.cut(name))
    return {n for n in names if n and len(n) >= 2}
