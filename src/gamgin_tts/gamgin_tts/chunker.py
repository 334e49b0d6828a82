"""Streaming sentence chunker: token text in, speakable segments out. Pure Python.

The LLM's reply arrives a few characters at a time; speech should start as soon as a
sentence (or, for the very first segment, a clause) is complete, and no segment may be
longer than the engine can say in one call (XTTS v2 stops at ~82 characters of Chinese).
Cut points, in order of preference:

1. a sentence end (。！？!?…, a newline, or "." followed by a space);
2. for the first segment of an answer only: a clause mark (，、；：,;:) once at least
   ``first_min_chars`` are waiting, so the robot starts talking early;
3. when the text up to the next sentence end would exceed the limit: the last clause
   mark that keeps the segment under the limit;
4. failing that, the last word boundary (spaces, jieba words) under the limit, never
   inside a word or number;
5. failing that (e.g. a 300-digit number): the longest prefix under the limit.

Nothing is dropped or repeated: the ``raw`` texts of all segments, concatenated, are
exactly the fed text. The limit applies to the *normalized* text (what the engine is
given), in the limit of the segment's language (Chinese if it has any Han character).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from gamgin_tts.normalize import has_han, normalize

SENTENCE_ENDS = set("。！？!?….\n")
CLAUSE_MARKS = set("，、；：,;:")
# Chinese marks are unambiguous: a cut there is certain before the next character arrives.
_IMMEDIATE = set("。！？!?…\n；;，、：")
# Closing quotes/brackets and repeated marks stay with the sentence they close.
_TRAILERS = set("”’」』）)]】》\"'。！？!?….，,、；;：: \t\n\u3000")
_DIGIT_SEPARATED = set(".,:")

DEFAULT_LIMITS = {"zh": 82, "en": 250}
_TITLES = {"mr", "mrs", "ms", "dr", "prof", "st", "vs", "no", "jr", "sr", "mt", "approx"}


@dataclass(frozen=True)
class Segment:
    """One piece of the answer to synthesize in one engine call (or one per language run)."""

    index: int  # 0, 1, ... within the stream
    raw: str  # the exact slice of the fed text (concatenation of all raws == input)
    text: str  # normalized text to speak; '' when nothing is speakable (emoji, markup)
    lang: str  # whose limit applied: "zh" when it has any Han character, else "en"
    reason: str  # why it was cut: sentence, first, clause, word, hard, flush


class SentenceChunker:
    """Feed token text with ``feed``; call ``flush`` at the end of the answer."""

    def __init__(self, limits: dict[str, int] | None = None, first_min_chars: int = 4,
                 normalizer: Callable[[str], str] = normalize) -> None:
        self.limits = dict(DEFAULT_LIMITS if limits is None else limits)
        if any(v < 8 for v in self.limits.values()):
            raise ValueError(f"segment limits must be >= 8 characters, got {self.limits}")
        self.first_min_chars = first_min_chars
        self.normalizer = normalizer
        self._buf = ""
        self._count = 0
        self._scan_from = 0  # no confirmed sentence end before this index of _buf

    @property
    def pending(self) -> str:
        """Text fed but not yet emitted."""
        return self._buf

    @property
    def emitted(self) -> int:
        return self._count

    def feed(self, text: str) -> list[Segment]:
        if not text:
            return []
        self._buf += text
        return self._drain(final=False)

    def flush(self) -> list[Segment]:
        """The rest of the answer (the stream is complete)."""
        out = self._drain(final=True)
        if self._buf:
            out.append(self._emit(len(self._buf), "flush"))
        return out

    # ------------------------------------------------------------------ internals
    def _limit(self, norm: str) -> int:
        lang = "zh" if has_han(norm) else "en"
        return self.limits.get(lang) or min(self.limits.values())

    def _fits(self, raw: str) -> bool:
        norm = self.normalizer(raw)
        return len(norm) <= self._limit(norm)

    def _emit(self, end: int, reason: str) -> Segment:
        raw, self._buf = self._buf[:end], self._buf[end:]
        self._scan_from = 0
        norm = self.normalizer(raw)
        seg = Segment(self._count, raw, norm, "zh" if has_han(norm) else "en", reason)
        self._count += 1
        return seg

    def _confirmed(self, i: int, final: bool) -> bool:
        """Whether the mark at _buf[i] is a real cut (not "3.5", "1,000", "e.g" or "a.b")."""
        ch, buf = self._buf[i], self._buf
        if ch in _IMMEDIATE and ch not in ",:":
            return True
        if i + 1 >= len(buf):
            return final
        nxt = buf[i + 1]
        if ch in _DIGIT_SEPARATED and nxt.isdigit() and i > 0 and buf[i - 1].isdigit():
            return False
        if ch == ".":
            return (nxt.isspace() or not nxt.isalnum()) and not self._abbreviation(i)
        return True

    def _abbreviation(self, i: int) -> bool:
        """"Mr." "Dr." "e.g." "U.S." "A." do not end a sentence (a cut there is a pause)."""
        j = i
        while j > 0 and (self._buf[j - 1].isascii() and (self._buf[j - 1].isalpha()
                                                           or self._buf[j - 1] == ".")):
            j -= 1
        word = self._buf[j:i]
        if not word:  # "1. " at the start of a line is a list marker, not a sentence end
            k = i
            while k > 0 and self._buf[k - 1].isdigit():
                k -= 1
            line_start = k == 0 or self._buf[k - 1] == "\n"
            return k < i and line_start and i - k <= 3
        return len(word) == 1 or "." in word or word.lower() in _TITLES

    def _extend(self, i: int) -> int:
        """End index of a cut after the mark at i: trailing quotes/marks/spaces included."""
        j = i + 1
        while j < len(self._buf) and self._buf[j] in _TRAILERS:
            if self._buf[j] in _DIGIT_SEPARATED and j + 1 < len(self._buf) \
                    and self._buf[j + 1].isdigit():
                break
            j += 1
        return j

    def _marks(self, final: bool, kinds: set[str], start: int = 0) -> list[int]:
        return [self._extend(i) for i in range(start, len(self._buf))
                if self._buf[i] in kinds and self._confirmed(i, final)]

    def _drain(self, final: bool) -> list[Segment]:
        out: list[Segment] = []
        while self._buf:
            seg = self._next(final)
            if seg is None:
                break
            out.append(seg)
        return out

    def _next(self, final: bool) -> Segment | None:
        buf = self._buf
        # 1. a complete sentence
        end = None
        for i in range(self._scan_from, len(buf)):
            if buf[i] in SENTENCE_ENDS and self._confirmed(i, final):
                end = self._extend(i)
                break
        if end is None:
            self._scan_from = max(0, len(buf) - 1)  # a "." at the end may still be confirmed
        # 2. an early first segment (a clause is enough)
        if self._count == 0:
            clause = [c for c in self._marks(final, CLAUSE_MARKS)
                      if end is None or c < end]
            for c in clause:
                if len(self.normalizer(buf[:c])) >= self.first_min_chars and self._fits(buf[:c]):
                    return self._emit(c, "first")
        if end is not None and self._fits(buf[:end]):
            return self._emit(end, "sentence")
        # 3./4./5. too long (or growing too long without a sentence end)
        span = end if end is not None else len(buf)
        if end is None and self._fits(buf[:span]):
            return None  # keep waiting for the sentence to end
        clauses = [c for c in self._marks(final, CLAUSE_MARKS) if c < span]
        c = self._last_fitting(clauses)
        if c is not None:
            return self._emit(c, "clause")
        if end is None and not final and buf[-1] in CLAUSE_MARKS | SENTENCE_ENDS | {"."}:
            return None  # the mark at the end may still be confirmed by the next token
        c = self._last_fitting(self._word_boundaries(span, final or end is not None))
        if c is not None:
            return self._emit(c, "word")
        c = self._last_fitting(list(range(1, span)))
        return self._emit(c if c is not None else 1, "hard")

    def _last_fitting(self, cuts: list[int]) -> int | None:
        """Largest cut whose prefix fits the limit (binary search: length grows with the cut)."""
        cuts = sorted(set(c for c in cuts if 0 < c < len(self._buf) + 1))
        lo, hi, best = 0, len(cuts) - 1, None
        while lo <= hi:
            mid = (lo + hi) // 2
            if self._fits(self._buf[:cuts[mid]]):
                best, lo = cuts[mid], mid + 1
            else:
                hi = mid - 1
        return best

    def _word_boundaries(self, span: int, complete: bool) -> list[int]:
        """Cuts between words (not inside a Latin word or a number) within _buf[:span].
        When the text may still grow, the last few characters can be half a word: no cut
        there."""
        text = self._buf[:span]
        horizon = len(text) if complete else len(text) - 4
        cuts = [m.end() for m in re.finditer(r"\s+", text)]
        if has_han(text):
            import jieba  # loaded only for run-on Chinese without punctuation

            from gamgin_common import zh_words

            zh_words.install()
            cuts += [end for _, _, end in jieba.tokenize(text)]
        ok = []
        for c in sorted(set(cuts)):
            if c >= len(text) or c > horizon:
                continue
            a, b = text[c - 1], text[c]
            inside_word = a.isascii() and a.isalnum() and b.isascii() and b.isalnum()
            inside_number = (a.isdigit() and b in _DIGIT_SEPARATED) or (
                a in _DIGIT_SEPARATED and b.isdigit())
            if inside_word or inside_number:
                continue
            ok.append(c)
        return ok


def split_text(text: str, limits: dict[str, int] | None = None,
               first_min_chars: int = 4) -> list[Segment]:
    """A whole text at once, cut the same way (for `gamgin say` and benchmarks)."""
    ch = SentenceChunker(limits, first_min_chars)
    return ch.feed(text) + ch.flush()

