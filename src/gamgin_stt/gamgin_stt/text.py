"""Text clean-up of recognizer output and error rates for tests and the benchmark. Pure Python."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Whisper often writes Mandarin in traditional characters; the product speaks simplified."""
    return _t2s().convert(text) if has_cjk(text) else text


def collapse_repeats(ids: list[int], min_period: int = 2, tail_repeats: int = 3) -> list[int]:
    """Keep one copy when a decode loops on its own output — what Whisper does when its
    window holds too little trailing silence ("A. A. A. A") or on unclear audio
    ("明天 天 天 天 天"). A sequence periodic from its start collapses to one period; a tail
    repeating one unit at least ``tail_repeats`` times (one more for a single token) is cut
    to one unit. Short real repeats ("3, 3", "天天") stay."""
    n = len(ids)
    for p in range(min_period, n // 2 + 1):
        if all(ids[i] == ids[i + p] for i in range(n - p)):
            return ids[:p]
    keep = n
    for p in range(1, n // tail_repeats + 1):
        i = n - p  # extend the periodic tail ids[i:] leftwards
        while i > 0 and ids[i - 1] == ids[i - 1 + p]:
            i -= 1
        if (n - i) >= p * (tail_repeats + (p == 1)):
            keep = min(keep, i + p)
    return ids[:keep]


def join_parts(parts: list[str]) -> str:
    """Join the texts of an utterance cut in parts: no space between Chinese parts."""
    out = ""
    for part in (p.strip() for p in parts):
        if not part:
            continue
        if out and not (has_cjk(out[-1]) or has_cjk(part[0])):
            out += " "
        out += part
    return out


# ---------------------------------------------------------------- error rates
_PUNCT = re.compile(r"[^\w\s]|_", re.UNICODE)


def normalize_words(text: str) -> list[str]:
    """Lower case, no punctuation, whitespace-split words (English WER)."""
    text = unicodedata.normalize("NFKC", text).lower().replace("-", " ")
    return _PUNCT.sub(" ", text).split()


_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _numbers_as_words(text: str) -> str:
    """"26度" and "二十六度" are the same words: Whisper writes digits (and "°C") where the
    speaker said the numeral."""
    text = text.replace("°C", "度").replace("℃", "度").replace("%", "").replace("％", "")
    try:
        import cn2an
    except ImportError:
        return text
    return _NUMBER.sub(lambda m: cn2an.an2cn(m.group(0), "low"), text)


def normalize_chars(text: str) -> list[str]:
    """Characters without punctuation or spaces, simplified, numbers as Chinese numerals
    (Mandarin CER)."""
    text = _numbers_as_words(to_simplified(unicodedata.normalize("NFKC", text)))
    return [c for c in _PUNCT.sub("", text) if not c.isspace()]


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def error_rate(ref: list[str], hyp: list[str]) -> float:
    return edit_distance(ref, hyp) / max(1, len(ref))


def wer(ref: str, hyp: str) -> float:
    return error_rate(normalize_words(ref), normalize_words(hyp))


def cer(ref: str, hyp: str) -> float:
    return error_rate(normalize_chars(ref), normalize_chars(hyp))


_ADDRESS_STRIP = re.compile(r"[\s\W_]+")


def is_address_only(text: str, names: tuple[str, ...]) -> bool:
    """True when the text is nothing but one of the robot's names: "金坚。", "金坚!", or
    what Whisper writes for it when it is said alone (紧紧, 请见, 金剑: the same number of
    syllables, each close in pinyin). A false "yes" only makes the turn wait a few
    seconds for more; a false "no" cuts the user off after the name."""
    from difflib import SequenceMatcher

    core = _ADDRESS_STRIP.sub("", to_simplified(text)).lower()
    if not core or not names:
        return False
    if any(core == _ADDRESS_STRIP.sub("", n).lower() for n in names):
        return True
    # characters' readings only: pypinyin's phrase dictionaries would cost this process
    # 58 MB for the first final that is not the name itself
    from gamgin_common.zh_words import readings

    def first(text: str) -> list[str]:
        return [(readings(c) or (c,))[0] for c in text]

    def close(a: str, b: str) -> bool:
        return ((a[0] == b[0] and SequenceMatcher(None, a, b).ratio() >= 0.5)
                or (a[:1] in "jqx" and b[:1] in "jqx" and a[1:2] == b[1:2]))

    if not has_cjk(core):  # Whisper spelled it: "Jin Jian"
        return any(core == "".join(first(n)) for n in names if has_cjk(n))
    for name in names:
        want = _ADDRESS_STRIP.sub("", name)
        if has_cjk(name) and len(core) == len(want) and all(
                any(close(a, b) for a in (readings(c) or (c,)) for b in (readings(w) or (w,)))
                for c, w in zip(core, want, strict=True)):
            return True
    return False
