"""Written answer -> text a speech engine can read. Pure Python, no ROS.

Numbers, dates, times, percentages, temperatures and units are read out in the language
around them (Chinese with ``cn2an``, English with ``num2words``); markdown, URLs, emoji
and control characters are removed; the result is split into per-language runs, because
espeak-ng (and XTTS) speak one language per call.

Every rule is local (it never looks across a sentence or clause mark), so normalizing the
segments of an answer one by one gives the same text as normalizing the whole answer:
the streaming chunker relies on that.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import cn2an
from num2words import num2words

# ----------------------------------------------------------------- character classes
_HAN_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x2FA1F))


def is_han(ch: str) -> bool:
    o = ord(ch)
    return any(lo <= o <= hi for lo, hi in _HAN_RANGES)


def has_han(text: str) -> bool:
    return any(is_han(c) for c in text)


# ----------------------------------------------------------------- markdown and noise
_MD_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"!\[([^\]\n]*)\]\([^)\n]*\)"), r"\1"),  # image -> alt text
    (re.compile(r"\[([^\]\n]*)\]\([^)\n]*\)"), r"\1"),  # link -> its text
    (re.compile(r"https?://[^\s，。！？、）)]+"), ""),  # a URL read aloud is noise
    (re.compile(r"<[^>\n]{1,80}>"), ""),  # html tags
    (re.compile(r"```[^\n]*"), ""),  # code fence markers (the code itself stays)
    (re.compile(r"(^|\n)[ \t]*#{1,6}[ \t]*"), r"\1"),  # headings
    (re.compile(r"(^|\n)[ \t]*>+[ \t]?"), r"\1"),  # block quotes
    (re.compile(r"(^|\n)[ \t]*[-*+•][ \t]+"), r"\1"),  # bullets
    (re.compile(r"(^|\n)[ \t]*(\d{1,3})[.)][ \t]+(?=[\u3400-\u9fff])"), r"\1\2、"),  # 1、项目
    (re.compile(r"(^|\n)[ \t]*(\d{1,3})[.)][ \t]+"), r"\1\2, "),  # "1. item" -> "1, item"
    (re.compile(r"(\*\*|__|~~|`|\*)"), ""),  # emphasis, code spans
    (re.compile(r"(?<=[A-Za-z])_(?=[A-Za-z])"), " "),  # snake_case -> words
    (re.compile(r"[|]"), " "),  # table cells
    (re.compile(r"(^|\n)[ \t]*[-=:]{3,}[ \t]*(?=\n|$)"), r"\1"),  # rules / table separators
]

# Symbols that carry meaning are spelled out before symbol stripping (emoji are "So").
_KEEP_SYMBOLS = {"°", "℃", "℉", "%", "％", "‰", "$", "¥", "￥", "€", "£", "+", "=", "&", "@"}


def strip_markup(text: str) -> str:
    """Markdown, URLs, HTML, emoji and control characters out; words kept."""
    for pat, rep in _MD_RULES:
        text = pat.sub(rep, text)
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in _KEEP_SYMBOLS:
            out.append(ch)
        elif ch in "\n\t":
            out.append(" ")
        elif cat in ("So", "Sk", "Cs", "Co", "Cn", "Cf", "Mn", "Me") and not is_han(ch):
            continue  # emoji, skin tones, variation selectors, ZWJ, private use, unassigned
        elif cat == "Cc":
            continue
        else:
            out.append(ch)
    return "".join(out)


# ----------------------------------------------------------------- numbers
_UNITS = {
    # unit: (Chinese, English singular, English plural)
    "km/h": ("公里每小时", "kilometer per hour", "kilometers per hour"),
    "m/s": ("米每秒", "meter per second", "meters per second"),
    "°C": ("摄氏度", "degree Celsius", "degrees Celsius"),
    "℃": ("摄氏度", "degree Celsius", "degrees Celsius"),
    "°F": ("华氏度", "degree Fahrenheit", "degrees Fahrenheit"),
    "℉": ("华氏度", "degree Fahrenheit", "degrees Fahrenheit"),
    "°": ("度", "degree", "degrees"),
    "%": ("", "percent", "percent"),
    "％": ("", "percent", "percent"),
    "‰": ("", "per mille", "per mille"),
    "km": ("公里", "kilometer", "kilometers"),
    "cm": ("厘米", "centimeter", "centimeters"),
    "mm": ("毫米", "millimeter", "millimeters"),
    "kg": ("公斤", "kilogram", "kilograms"),
    "mg": ("毫克", "milligram", "milligrams"),
    "ml": ("毫升", "milliliter", "milliliters"),
    "mL": ("毫升", "milliliter", "milliliters"),
    "kWh": ("千瓦时", "kilowatt hour", "kilowatt hours"),
    "kW": ("千瓦", "kilowatt", "kilowatts"),
    "W": ("瓦", "watt", "watts"),
    "GB": ("G B", "gigabyte", "gigabytes"),
    "MB": ("M B", "megabyte", "megabytes"),
    "Hz": ("赫兹", "hertz", "hertz"),
    "dB": ("分贝", "decibel", "decibels"),
    "m": ("米", "meter", "meters"),
    "g": ("克", "gram", "grams"),
    "L": ("升", "liter", "liters"),
    "h": ("小时", "hour", "hours"),
    "s": ("秒", "second", "seconds"),
    "min": ("分钟", "minute", "minutes"),
}
_UNIT_RE = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
_NUM = r"\d+(?:\.\d+)?"
_NUMBER_RE = re.compile(
    r"(?P<date>(?<!\d)\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?!\d))"
    r"|(?P<time>(?<![\d:])\d{1,2}:\d{2}(?::\d{2})?(?![\d:]))"
    r"|(?P<money>[$¥￥€£]\s?" + _NUM + ")"
    r"|(?P<range>(?<![\d.])" + _NUM + r"\s?[-~～到至]\s?" + _NUM + r")(?![\d.])"
    r"(?P<range_unit>\s?(?:" + _UNIT_RE + r")(?![A-Za-z]))?"
    r"|(?P<fraction>(?<![\d/])\d+/\d+(?![\d/]))"
    r"|(?P<number>(?:(?<![\dA-Za-z.])-)?" + _NUM + r")"
    r"(?P<suffix>(?:st|nd|rd|th)(?![A-Za-z])|\s?(?:" + _UNIT_RE + r")(?![A-Za-z]))?"
)
_THOUSANDS = re.compile(r"(?<![\d.])(\d{1,3}(?:,\d{3})+)(?![\d,])")
_CURRENCY = {"$": ("美元", "dollar", "dollars"), "¥": ("元", "yuan", "yuan"),
             "￥": ("元", "yuan", "yuan"), "€": ("欧元", "euro", "euros"),
             "£": ("英镑", "pound", "pounds")}
_ORDINAL_SUFFIXES = ("st", "nd", "rd", "th")


# The context of a number never reaches past these: the chunker cuts there, and a number
# must read the same in a segment as in the whole answer.
CONTEXT_STOPS = set("。！？!?.…；;：:，,、\n")


def _context_lang(text: str, start: int, end: int, default: str) -> str:
    """The language a number is read in: the nearest letter or Han character, left first."""
    for i in range(start - 1, -1, -1):
        ch = text[i]
        if is_han(ch):
            return "zh"
        if ch.isalpha():
            return "en"
        if ch in CONTEXT_STOPS and ch != "." and ch != ",":
            break
        if ch in ".," and (i == 0 or not text[i - 1].isdigit()):
            break
    for i in range(end, len(text)):
        ch = text[i]
        if is_han(ch):
            return "zh"
        if ch.isalpha():
            return "en"
        if ch in CONTEXT_STOPS and not (ch in ".,:" and text[i + 1:i + 2].isdigit()):
            break
    return default


def _zh_digits(s: str) -> str:
    return "".join(cn2an.an2cn(d) for d in s if d.isdigit())


def _zh_number(s: str) -> str:
    s = s.strip()
    if s.lstrip("-").isdigit() and (len(s.lstrip("-")) >= 8 or (len(s) > 1 and s[0] == "0")):
        return _zh_digits(s)  # phone numbers, codes: digit by digit
    return cn2an.an2cn(s)


def _en_number(s: str) -> str:
    s = s.strip()
    if s.lstrip("-").isdigit() and (len(s.lstrip("-")) >= 8 or (len(s) > 1 and s[0] == "0")):
        return " ".join(num2words(int(d)) for d in s if d.isdigit())
    return num2words(float(s) if "." in s else int(s))


def _unit_words(unit: str, lang: str, value: str) -> str:
    zh, one, many = _UNITS[unit]
    if lang == "zh":
        return zh
    return one if value.strip() in ("1", "-1") else many


def _render_zh(m: re.Match[str]) -> str:
    g = m.groupdict()
    if g["date"]:
        y, mo, d = re.split(r"[-/.]", g["date"])
        return f"{_zh_digits(y)}年{cn2an.an2cn(str(int(mo)))}月{cn2an.an2cn(str(int(d)))}日"
    if g["time"]:
        parts = [int(p) for p in g["time"].split(":")]
        out = f"{cn2an.an2cn(str(parts[0]))}点"
        if parts[1]:
            out += f"{'零' if parts[1] < 10 else ''}{cn2an.an2cn(str(parts[1]))}分"
        if len(parts) > 2 and parts[2]:
            out += f"{cn2an.an2cn(str(parts[2]))}秒"
        return out
    if g["money"]:
        sym, val = g["money"][0], g["money"][1:]
        return _zh_number(val) + _CURRENCY[sym][0]
    if g["range"]:
        a, b = re.split(r"\s?[-~～到至]\s?", g["range"], maxsplit=1)
        unit = (g["range_unit"] or "").strip()
        if unit in ("%", "％"):
            return f"百分之{_zh_number(a)}到百分之{_zh_number(b)}"
        return f"{_zh_number(a)}到{_zh_number(b)}" + (_UNITS[unit][0] if unit else "")
    if g["fraction"]:
        a, b = g["fraction"].split("/")
        return f"{_zh_number(b)}分之{_zh_number(a)}"
    num, suffix = g["number"], (g["suffix"] or "").strip()
    if suffix in ("%", "％"):
        return "百分之" + _zh_number(num)
    if suffix == "‰":
        return "千分之" + _zh_number(num)
    if suffix in _ORDINAL_SUFFIXES:
        return "第" + _zh_number(num)
    year = len(num) == 4 and m.string[m.end():m.end() + 1] == "年"
    words = _zh_digits(num) if year else _zh_number(num)
    return words + (_UNITS[suffix][0] if suffix else "")


def _render_en(m: re.Match[str]) -> str:
    g = m.groupdict()
    if g["date"]:
        y, mo, d = (int(p) for p in re.split(r"[-/.]", g["date"]))
        import calendar

        month = calendar.month_name[mo] if 1 <= mo <= 12 else num2words(mo)
        return f"{month} {num2words(d, to='ordinal')}, {num2words(y, to='year')}"
    if g["time"]:
        parts = [int(p) for p in g["time"].split(":")]
        if parts[1] == 0:
            return f"{num2words(parts[0])} o'clock"
        mins = f"oh {num2words(parts[1])}" if parts[1] < 10 else num2words(parts[1])
        return f"{num2words(parts[0])} {mins}"
    if g["money"]:
        sym, val = g["money"][0], g["money"][1:].strip()
        _, one, many = _CURRENCY[sym]
        whole, _, cents = val.partition(".")
        out = f"{num2words(int(whole))} {one if whole == '1' else many}"
        if cents and int(cents):
            c = int((cents + "0")[:2])
            out += f" and {num2words(c)} cent{'s' if c != 1 else ''}"
        return out
    if g["range"]:
        a, b = re.split(r"\s?[-~～到至]\s?", g["range"], maxsplit=1)
        unit = (g["range_unit"] or "").strip()
        return f"{_en_number(a)} to {_en_number(b)}" + (
            " " + _unit_words(unit, "en", b) if unit else "")
    if g["fraction"]:
        a, b = (int(p) for p in g["fraction"].split("/"))
        denom = num2words(b, to="ordinal") + ("s" if a != 1 else "")
        return f"{num2words(a)} {'half' if b == 2 and a == 1 else denom}"
    num, suffix = g["number"], (g["suffix"] or "").strip()
    if suffix in _ORDINAL_SUFFIXES:
        return num2words(int(num), to="ordinal") if num.isdigit() else num
    if not suffix and len(num) == 4 and num.isdigit() and 1100 <= int(num) <= 2099:
        return num2words(int(num), to="year")
    words = _en_number(num)
    return words + (" " + _unit_words(suffix, "en", num) if suffix else "")


def read_numbers(text: str, default_lang: str = "zh") -> str:
    """Numbers, dates, times, money, ranges, units -> words in the surrounding language
    (``default_lang`` when there is no letter around, e.g. a bare "42")."""
    text = _THOUSANDS.sub(lambda m: m.group(1).replace(",", ""), text)

    def render(m: re.Match[str]) -> str:
        lang = _context_lang(m.string, m.start(), m.end(), default_lang)
        out = _render_zh(m) if lang == "zh" else _render_en(m)
        if lang == "en":  # keep words apart from neighbouring letters
            if m.start() > 0 and m.string[m.start() - 1].isalnum():
                out = " " + out
            if m.end() < len(m.string) and m.string[m.end()].isalnum():
                out += " "
        return out

    return _NUMBER_RE.sub(render, text)


_SPACES = re.compile(r"[ \t\u3000]+")
_SPACE_BEFORE_ZH = re.compile(r"(?<=[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]) +|"
                              r" +(?=[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef])")


# fullwidth digits and letters (０-９, Ａ-Ｚ, ａ-ｚ) -> ASCII; fullwidth punctuation stays
_FULLWIDTH = {c: c - 0xFEE0 for r in ((0xFF10, 0xFF19), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A))
              for c in range(r[0], r[1] + 1)}
_SYMBOL_WORDS = {"&": ("和", "and"), "@": ("at", "at"), "+": ("加", "plus"),
                 "=": ("等于", "equals")}
_SYMBOL_RE = re.compile("[&@+=]")


def normalize(text: str, default_lang: str | None = None) -> str:
    """The text to speak for ``text`` (one segment or a whole answer); may be ''.
    A number with no letter near it is read in ``default_lang``: by default English for
    a text without Han characters but with Latin letters, else Chinese."""
    text = text.translate(_FULLWIDTH)
    if default_lang is None:
        latin = any(c.isascii() and c.isalpha() for c in text)
        default_lang = "en" if latin and not has_han(text) else "zh"
    text = strip_markup(text)
    text = read_numbers(text, default_lang)
    text = _SYMBOL_RE.sub(lambda m: " " + _SYMBOL_WORDS[m.group()][
        _context_lang(m.string, m.start(), m.end(), default_lang) == "en"] + " ", text)
    text = _SPACES.sub(" ", text)
    text = _SPACE_BEFORE_ZH.sub("", text)
    return text.strip()


def speakable(text: str) -> bool:
    """Whether a normalized text has anything an engine would pronounce."""
    return any(c.isalnum() for c in text)


# ----------------------------------------------------------------- language runs
@dataclass(frozen=True)
class Run:
    """A stretch of normalized text in one language."""

    lang: str  # "zh" or "en"
    text: str


def split_languages(text: str) -> list[Run]:
    """Per-language runs; punctuation and spaces stay with the run they follow."""
    runs: list[list] = []
    for ch in text:
        if is_han(ch):
            lang = "zh"
        elif ch.isalpha() or ch.isdigit():
            lang = "en"
        else:
            lang = None  # neutral: belongs to the current run
        if lang is None or (runs and runs[-1][0] == lang):
            if runs:
                runs[-1][1].append(ch)
            else:
                runs.append([None, [ch]])
            continue
        if runs and runs[-1][0] is None:
            runs[-1][0] = lang  # leading punctuation joins the first real run
            runs[-1][1].append(ch)
        else:
            runs.append([lang, [ch]])
    out = [Run(lang or "en", "".join(chars).strip()) for lang, chars in runs]
    return [r for r in out if speakable(r.text)]
