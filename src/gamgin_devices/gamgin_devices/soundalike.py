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

import importlib.machinery
import importlib.util
import itertools
import re
import sys
import unicodedata
from collections.abc import Callable, Iterable
from pathlib import Path

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


# ---------------------------------------------------------------- English, by phonemes
# English has the opposite problem: Whisper writes real words that sound like the name it
# did not quite hear ("TV" as "team we", "bedroom" as "madroom"). Spelling says little
# about sound in English, so the comparison is on espeak-ng's phonemes (the IPA the
# product's own English voice reads), loosened where recognizers and accents blur sounds.
_IPA_MARKS = re.compile(r"[ˈˌː.\s'-]")
_IPA_LOOSE = str.maketrans({"w": "v", "ɾ": "t", "d": "t", "ɹ": "l", "ɚ": "ə", "ɐ": "ə",
                            "ɪ": "i", "ɛ": "e", "æ": "e", "ɔ": "o", "ɑ": "o", "ʊ": "u"})
# words a span may not begin or end with: the command's own words stay what they are
_EN_FRAME = frozenset(
    "a an the to on off in at of and or my your our this that it please turn switch set "
    "put make start stop open close up down all some is are be".split())
_EN_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
MAX_EN_SPAN = 3  # words: the longest names ("bedroom air conditioner") are 3


def loose_ipa(ipa: str) -> str:
    """Phonemes without stress, length and spaces, with often-confused sounds merged."""
    return _IPA_MARKS.sub("", ipa).translate(_IPA_LOOSE)


def edit_distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance, or ``limit + 1`` as soon as it must exceed ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        if min(cur) > limit:
            return limit + 1
        prev = cur
    return prev[-1]


class EnglishSoundAlike:
    """Spans of one to three words that sound like one of the home's English names (and
    are not it) replaced by the name. ``phonemize``: text -> IPA (espeak-ng's).

    A name of n loose phonemes takes a span at most ``n // 4`` edits away, and only one
    name may be nearest: "team we" (timvi) is one edit from "tv" (tivi); "pen" is one from
    "fan" (fen) too, but a name of three phonemes must sound exactly alike. As in Chinese,
    the caller only keeps the correction when the original did not parse as a command and
    the corrected text does."""

    def __init__(self, names: Iterable[str], phonemize: Callable[[str], str]) -> None:
        self._phonemize = phonemize
        self._cache: dict[str, str] = {}
        self.names = {n.lower() for n in names if n.strip()}
        self._keys = [(n, self._key(n)) for n in sorted(self.names)]

    def _key(self, text: str) -> str:
        words = text.lower().split()
        if len(self._cache) > 10_000:  # the words users say are unbounded; names are few
            self._cache.clear()
        for w in words:
            if w not in self._cache:
                self._cache[w] = loose_ipa(self._phonemize(w))
        return "".join(self._cache[w] for w in words)

    def nearest(self, span: str) -> str | None:
        """The one name the span sounds like, or None (none close, or two equally close)."""
        key = self._key(span)
        best: list[str] = []
        best_d = 99
        for name, nkey in self._keys:
            limit = len(nkey) // 4
            d = edit_distance(key, nkey, min(limit, best_d))
            if d > limit or d > best_d:
                continue
            best = [name] if d < best_d else [*best, name]
            best_d = d
        return best[0] if len(best) == 1 else None

    def correct(self, text: str) -> str:
        """The text with each sound-alike span replaced, longest spans first, left to right."""
        low = text.lower()
        words = list(_EN_WORD.finditer(low))
        out, pos, i = [], 0, 0
        while i < len(words):
            for n in range(min(MAX_EN_SPAN, len(words) - i), 0, -1):
                group = words[i:i + n]
                tokens = [m.group() for m in group]
                span = " ".join(tokens)
                if (tokens[0] in _EN_FRAME or tokens[-1] in _EN_FRAME
                        or any(t.isdigit() for t in tokens)):
                    continue
                if span in self.names:
                    name = span
                else:
                    name = self.nearest(span)
                    if name is None:
                        continue
                out.append(text[pos:group[0].start()] + name)
                pos, i = group[-1].end(), i + n
                break
            else:
                i += 1
        return "".join(out) + text[pos:]


def espeak_phonemes(voice: str = "en-us") -> Callable[[str], str] | None:
    """Text -> espeak-ng phonemes (NFD, language flags dropped, clause punctuation kept, as
    piper's EspeakPhonemizer gives them), from the espeak-ng that piper-tts ships; None when
    it is not installed. Its bridge is loaded on its own: importing `piper` would import its
    ONNX voice too (onnxruntime: +16 MB in the LLM process, which has no other use for it)."""
    spec = importlib.util.find_spec("piper")  # found, not imported
    if spec is None or not spec.submodule_search_locations:
        return None
    pkg = Path(next(iter(spec.submodule_search_locations)))
    so = next(iter(sorted(pkg.glob("espeakbridge*.so"))), None)
    if so is None or not (pkg / "espeak-ng-data").is_dir():
        return None
    bridge = sys.modules.get("piper.espeakbridge")
    if bridge is None:
        loader = importlib.machinery.ExtensionFileLoader("espeakbridge", str(so))
        bridge = importlib.util.module_from_spec(
            importlib.util.spec_from_loader("espeakbridge", loader))
        loader.exec_module(bridge)
    bridge.initialize(str(pkg / "espeak-ng-data"))

    def phonemes(text: str) -> str:
        bridge.set_voice(voice)  # per call: a TTS in the same process may use another
        out = []
        for phones, terminator, _end in bridge.get_phonemes(text):
            out.append(unicodedata.normalize("NFD", re.sub(r"\([^)]+\)", "", phones)))
            out.append(terminator + (" " if terminator in (",", ":", ";") else ""))
        return "".join(out)

    return phonemes


def english_for_registry(registry) -> EnglishSoundAlike | None:
    """The home's English names (rooms, devices and aliases) by espeak-ng's phonemes
    (``espeak_phonemes``); None when espeak-ng is not there."""
    phonemes = espeak_phonemes("en-us")
    if phonemes is None:
        return None
    names: set[str] = set()
    for room in registry.rooms.values():
        names.update([room.name_en, *room.aliases_en])
    for d in registry.devices.values():
        names.update([d.name_en, *d.aliases_en])
    return EnglishSoundAlike(names, phonemes)
