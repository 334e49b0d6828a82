"""Chinese-aware chunking. Pure Python.

Text is split at paragraphs, then at sentence ends (。！？ and their full-width kin, and
English . ! ? before a space), then packed into chunks of at most ``budget`` tokens with
about ``overlap`` tokens carried over, so a fact that straddles a boundary is whole in one
chunk. The prototype cut Chinese every N characters, splitting sentences (and names) in two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gamgin_knowledge.text import CJK, count_tokens

_ZH_END = re.compile(r"[。！？；!?][”’」』）)\"']*")
_EN_END = re.compile(r"(?<=[a-z0-9%)\"'][.!?])(?:\s+(?=[A-Z0-9\"'(\u4e00-\u9fff])|"
                     r"(?=[\u4e00-\u9fff]))")
_ABBREV = re.compile(r"(?:^|\s)(?:Mr|Mrs|Ms|Dr|Prof|St|No|Nr|vs|etc|e\.g|i\.e|Jan|Feb|Mar|Apr|"
                     r"Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\.$")
_CLAUSE = re.compile(r"(?<=[，,；;：:])")


@dataclass
class Chunk:
    text: str
    page: int  # 1-based PDF page where the chunk starts; 0 when the file has no pages
    ordinal: int  # position in the file


def split_paragraphs(text: str) -> list[str]:
    paras = re.split(r"\n\s*\n", text)
    out = []
    for p in paras:
        # PDF text layers break lines mid-sentence: join lines, keeping Chinese unspaced
        lines = [ln.strip() for ln in p.split("\n") if ln.strip()]
        joined = ""
        for ln in lines:
            if not joined:
                joined = ln
            elif _cjk_edge(joined, ln) or CJK.search(joined[-12:]) or CJK.search(ln[:12]):
                joined += ln  # Chinese layout wraps anywhere, even inside "tiger-2024"
            else:
                joined += " " + ln
        if joined:
            out.append(joined)
    return out


def _cjk_edge(a: str, b: str) -> bool:
    return bool(re.match(r"[\u3000-\u9fff\uff00-\uffef]", a[-1]) or
                re.match(r"[\u3000-\u9fff\uff00-\uffef]", b[0]))


def split_sentences(paragraph: str) -> list[str]:
    parts, start = [], 0
    for m in _ZH_END.finditer(paragraph):  # a mark plus any closing quotes ends a sentence
        parts.append(paragraph[start:m.end()])
        start = m.end()
    parts.append(paragraph[start:])
    parts = [p for piece in parts for p in _EN_END.split(piece)]
    out: list[str] = []
    for p in (s.strip() for s in parts):
        if not p:
            continue
        if out and _ABBREV.search(out[-1]):  # "Dr." / "e.g." do not end a sentence
            out[-1] += " " + p
        else:
            out.append(p)
    return out


def _split_long(sentence: str, budget: int) -> list[str]:
    """A sentence over budget: cut at clause marks, then hard-cut by tokens."""
    if count_tokens(sentence) <= budget:
        return [sentence]
    out, cur = [], ""
    for clause in _CLAUSE.split(sentence):
        if cur and count_tokens(cur + clause) > budget:
            out.append(cur)
            cur = ""
        cur += clause
    if cur:
        out.append(cur)
    final = []
    for piece in out:
        while count_tokens(piece) > budget:
            cut = _cut_at_tokens(piece, budget)
            final.append(piece[:cut])
            piece = piece[cut:]
        if piece.strip():
            final.append(piece)
    return final


def _cut_at_tokens(text: str, n: int) -> int:
    from gamgin_knowledge.text import _WORD

    for i, m in enumerate(_WORD.finditer(text)):
        if i == n:
            return m.start()
    return len(text)


class SentenceChunker:
    def __init__(self, budget: int = 160, overlap: int = 32) -> None:
        if budget < 8 or not 0 <= overlap < budget:
            raise ValueError("chunk budget must be >= 8 and 0 <= overlap < budget")
        self.budget, self.overlap = budget, overlap

    def chunk(self, pages: list[tuple[int, str]]) -> list[Chunk]:
        """``pages``: (page number, text). Paragraphs stay separated by a blank line inside
        a chunk (a heading never runs into the sentence after it); chunks never span pages."""
        units: list[tuple[int, str, bool]] = []  # (page, sentence, starts a paragraph)
        for page, text in pages:
            for para in split_paragraphs(text):
                for i, s in enumerate(split_sentences(para)):
                    for j, piece in enumerate(_split_long(s, self.budget)):
                        units.append((page, piece, i == 0 and j == 0))
        chunks: list[Chunk] = []
        cur: list[tuple[int, str, bool]] = []
        fresh = 0  # units in cur not already in the previous chunk
        for unit in units:
            t = count_tokens(unit[1])
            if fresh and cur and unit[0] != cur[-1][0]:
                # a new page starts a new chunk, so a citation names the page of the fact
                chunks.append(self._make(cur, len(chunks)))
                cur, fresh = [], 0
            elif fresh and sum(count_tokens(u[1]) for u in cur) + t > self.budget:
                chunks.append(self._make(cur, len(chunks)))
                cur = self._tail(cur, self.budget - t)
                fresh = 0
            cur.append(unit)
            fresh += 1
        if fresh:
            chunks.append(self._make(cur, len(chunks)))
        return chunks

    def _tail(self, units: list[tuple[int, str, bool]], room: int) -> list[tuple[int, str, bool]]:
        """Whole trailing sentences worth up to ``overlap`` tokens (and that leave room for
        the next sentence), carried into the next chunk."""
        tail: list[tuple[int, str, bool]] = []
        n = 0
        for u in reversed(units):
            t = count_tokens(u[1])
            if n + t > min(self.overlap, room):
                break
            tail.insert(0, u)
            n += t
        return tail

    @staticmethod
    def _make(units: list[tuple[int, str, bool]], ordinal: int) -> Chunk:
        text = ""
        for _page, s, para_start in units:
            if text:
                text += "\n\n" if para_start else ("" if _cjk_edge(text, s) else " ")
            text += s
        return Chunk(text=text, page=units[0][0], ordinal=ordinal)
