"""Reading documents: PDF (pypdf), plain text (UTF-8 or GB18030) and Markdown. Pure Python.

Every reader returns pages of text or raises ``SkipFile`` with a reason a person can act on
(encrypted, scanned, corrupt, too big, binary, empty); a batch goes on without that file.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

TEXT_SUFFIXES = {".txt", ".text", ".md", ".markdown"}
PDF_SUFFIXES = {".pdf"}
SUPPORTED = TEXT_SUFFIXES | PDF_SUFFIXES


class SkipFile(Exception):
    """This file cannot be used; the message says why and what to do."""


@dataclass
class Page:
    number: int  # 1-based page in a PDF; 0 for files without pages
    text: str


@dataclass
class Limits:
    max_file_mb: float = 50.0  # a bigger file is skipped, not half-read
    max_pdf_pages: int = 500


def read_document(path: Path, limits: Limits | None = None) -> list[Page]:
    limits = limits or Limits()
    size = path.stat().st_size
    if size == 0:
        raise SkipFile("empty file")
    if size > limits.max_file_mb * 1e6:
        raise SkipFile(f"too big ({size / 1e6:.0f} MB > max_file_mb {limits.max_file_mb:g}); "
                       "split it or raise the limit")
    suffix = path.suffix.lower()
    if suffix in PDF_SUFFIXES:
        pages = read_pdf(path, limits)
    elif suffix in TEXT_SUFFIXES:
        text = decode_text(path.read_bytes())
        if suffix in (".md", ".markdown"):
            text = markdown_to_text(text)
        pages = [Page(0, text)]
    else:
        raise SkipFile(f"unsupported type {suffix or '(none)'}: use PDF, TXT or Markdown")
    if not any(re.search(r"\w", p.text) for p in pages):
        raise SkipFile("no text in it")
    return pages


def decode_text(raw: bytes) -> str:
    """UTF-8 (with or without BOM), else GB18030 (which covers GBK/GB2312); binary refused."""
    head = raw[:65536]
    if b"\x00" in head:
        raise SkipFile("binary content (NUL bytes), not text")
    for enc in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(enc)
        except UnicodeDecodeError:
            continue
        # GB18030 decodes almost any byte soup: insist that it reads like text
        ctrl = sum(1 for c in text[:20000] if ord(c) < 32 and c not in "\r\n\t\f")
        if ctrl > 0.01 * max(1, min(len(text), 20000)):
            raise SkipFile("binary content (control bytes), not text")
        if enc == "gb18030" and not _plausible_gb(text):
            raise SkipFile("not UTF-8 or GB18030 text (binary or another encoding)")
        return text.replace("\r\n", "\n").replace("\r", "\n")
    raise SkipFile("not UTF-8 or GB18030 text (binary or another encoding)")


def _plausible_gb(text: str) -> bool:
    sample = text[:20000]
    common = sum(1 for c in sample if c.isascii() or "\u4e00" <= c <= "\u9fff"
                 or "\u3000" <= c <= "\u303f" or "\uff00" <= c <= "\uffef")
    return common >= 0.9 * len(sample)


_MD_RULES = [
    (re.compile(r"```.*?```", re.S), ""),  # code blocks are not facts to speak
    (re.compile(r"!\[[^\]]*\]\([^)]*\)"), ""),  # images
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # links -> their text
    (re.compile(r"^\s{0,3}#{1,6}\s*(.*?)\s*#*\s*$", re.M), r"\1\n"),  # headings: own paragraph
    (re.compile(r"^\s*[-*+]\s+", re.M), ""),  # bullets
    (re.compile(r"^\s*>\s?", re.M), ""),  # quotes
    (re.compile(r"(\*\*|__|\*|`)"), ""),  # emphasis, inline code
    (re.compile(r"^\s*\|?\s*:?-{3,}.*$", re.M), ""),  # table rules
    (re.compile(r"\|"), " "),
]


def markdown_to_text(md: str) -> str:
    for pat, rep in _MD_RULES:
        md = pat.sub(rep, md)
    return md


def read_pdf(path: Path, limits: Limits) -> list[Page]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # warnings per broken object: noise
    try:
        reader = PdfReader(str(path), strict=False)
        if reader.is_encrypted:
            # many PDFs are "encrypted" with an empty user password (print/copy flags only)
            try:
                ok = reader.decrypt("")
            except Exception:
                ok = 0
            if not ok:
                raise SkipFile("encrypted PDF (password needed): save an unprotected copy")
        n = len(reader.pages)
    except SkipFile:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, IndexError) as exc:
        raise SkipFile(f"corrupt PDF ({type(exc).__name__}: {str(exc)[:80]})") from exc
    except Exception as exc:  # pypdf raises many kinds on broken files
        raise SkipFile(f"corrupt PDF ({type(exc).__name__}: {str(exc)[:80]})") from exc
    if n > limits.max_pdf_pages:
        raise SkipFile(f"too many pages ({n} > max_pdf_pages {limits.max_pdf_pages})")
    pages = []
    for i in range(n):
        try:
            text = reader.pages[i].extract_text() or ""
        except Exception as exc:
            raise SkipFile(f"corrupt PDF page {i + 1} ({type(exc).__name__})") from exc
        pages.append(Page(i + 1, text))
    if n and not any(re.search(r"\w", p.text) for p in pages):
        raise SkipFile(f"no text layer in {n} page(s) (scanned images?): OCR it first")
    return pages
