"""Chinese words and sounds at a small memory cost, for every process of the graph. Pure Python.

jieba with its dictionary in a memory-mapped trie that every process shares:

jieba keeps its dictionary as a Python dict of ~500k words and word prefixes: 65-76 MB in
each process that segments Chinese (the LLM's router and retriever, the knowledge node,
the standby; measured with `gamgin bench memory`). Here the same entries live in a
marisa-trie (1.3 MB) and an array of frequencies, built once from jieba's own dictionary
into the data folder's cache and mapped read-only: the page cache holds one copy for the
whole graph. Segmentation is identical (tested); lookups cost ~20 % more time.

``install()`` puts it into jieba's default tokenizer (``jieba.cut``, ``jieba.tokenize``...);
without marisa-trie or a writable cache, jieba loads its dictionary as usual.

``readings(ch)``: the toneless pinyin of one character from pypinyin's character table
alone (~8 MB), without the phrase dictionaries that importing pypinyin loads (58 MB per
process, measured), for sound-alike checks that only need characters.
"""

from __future__ import annotations

import array
import json
import logging
import mmap
import os
import threading
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Any

_lock = threading.Lock()
_installed: str | None = None  # "trie" or "dict" once install() has run
log = logging.getLogger("gamgin.zh_words")


class TrieFreq:
    """The mapping jieba's Tokenizer reads as ``FREQ`` (``in``, ``get``, ``[]``), backed by
    a mapped trie (word -> id) and frequencies by id; words added at run time
    (``jieba.add_word``) go to a small dict beside it."""

    __slots__ = ("extra", "freq", "trie")

    def __init__(self, trie: Any, freq: Any) -> None:
        self.trie, self.freq, self.extra = trie, freq, {}

    def __contains__(self, word: str) -> bool:
        return word in self.extra or word in self.trie

    def get(self, word: str, default: Any = None) -> Any:
        if word in self.extra:
            return self.extra[word]
        i = self.trie.get(word)
        return default if i is None else self.freq[i]

    def __getitem__(self, word: str) -> int:
        value = self.get(word, self)
        if value is self:
            raise KeyError(word)
        return value

    def __setitem__(self, word: str, freq: int) -> None:
        self.extra[word] = freq

    def __len__(self) -> int:
        return len(self.trie) + len(self.extra)


def cache_dir() -> Path:
    from gamgin_common.paths import data_dir

    return data_dir() / "cache" / "jieba"


def _key(dict_file: str) -> str:
    """Names the cache after the dictionary's content: another jieba or dictionary, another
    cache."""
    from gamgin_common.paths import file_sha256

    return file_sha256(dict_file)[:16]


def build(tokenizer: Any, folder: Path) -> Path:
    """Write <key>.marisa, <key>.freq and <key>.json (the total) for jieba's dictionary;
    atomically, so processes starting together never read a half-written file."""
    import marisa_trie

    dict_file = tokenizer.get_dict_file()
    name = getattr(dict_file, "name", None) or str(dict_file)
    dict_file.close()
    key = _key(name)
    base = folder / key
    if (base.with_suffix(".json")).exists():
        return base
    freq, total = tokenizer.gen_pfdict(tokenizer.get_dict_file())
    trie = marisa_trie.Trie(list(freq))
    values = array.array("I", bytes(4 * len(trie)))
    for word, f in freq.items():
        values[trie[word]] = f
    folder.mkdir(parents=True, exist_ok=True)
    tmp = f".{os.getpid()}.tmp"
    trie.save(str(base) + ".marisa" + tmp)
    Path(str(base) + ".freq" + tmp).write_bytes(values.tobytes())
    Path(str(base) + ".json" + tmp).write_text(json.dumps({"total": total, "words": len(trie)}))
    for suffix in (".marisa", ".freq", ".json"):  # .json last: it says the rest is there
        os.replace(str(base) + suffix + tmp, str(base) + suffix)
    return base


def load(base: Path) -> tuple[TrieFreq, int]:
    import marisa_trie

    trie = marisa_trie.Trie()
    trie.mmap(str(base) + ".marisa")
    with open(str(base) + ".freq", "rb") as f:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    meta = json.loads(Path(str(base) + ".json").read_text())
    freq = memoryview(mapped).cast("I")
    if len(freq) != len(trie) or meta.get("words") != len(trie):
        raise ValueError(f"{base}: trie and frequencies disagree; delete the cache")
    return TrieFreq(trie, freq), int(meta["total"])


def install(folder: Path | None = None) -> str:
    """jieba's default tokenizer on the shared dictionary ("trie"), else on its own ("dict",
    with the reason logged). Idempotent and thread-safe; returns which one is in use."""
    global _installed
    with _lock:
        if _installed:
            return _installed
        import jieba

        jieba.setLogLevel(logging.WARNING)
        dt = jieba.dt
        try:
            with dt.lock:
                freq, total = load(build(dt, folder or cache_dir()))
                dt.FREQ, dt.total, dt.initialized = freq, total, True
            _installed = "trie"
        except (ImportError, OSError, ValueError) as exc:
            log.warning("jieba: shared dictionary unavailable (%s); loading its own", exc)
            dt.initialize()
            _installed = "dict"
        return _installed


_char_table: dict[int, str] | None = None


def _table() -> dict[int, str]:
    """pypinyin's pinyin_dict module, loaded by path: importing it the usual way runs the
    package's __init__, which loads every phrase dictionary."""
    global _char_table
    if _char_table is None:
        import importlib.util

        spec = importlib.util.find_spec("pypinyin")
        if spec is None or spec.origin is None:
            raise ImportError("pypinyin is not installed")
        path = Path(spec.origin).parent / "pinyin_dict.py"
        mod_spec = importlib.util.spec_from_file_location("_gamgin_pinyin_chars", path)
        module = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(module)
        _char_table = module.pinyin_dict
    return _char_table


@lru_cache(maxsize=8192)
def readings(ch: str) -> tuple[str, ...]:
    """Toneless readings of one character, most common first ("调" -> ("diao", "tiao"),
    "绿" -> ("lv", "lu")); () for what is not a Han character."""
    raw = _table().get(ord(ch), "") if len(ch) == 1 else ""
    out: list[str] = []
    for r in raw.split(","):
        # ü (u + U+0308 once decomposed) is written v, as pypinyin's NORMAL style does
        nfd = unicodedata.normalize("NFD", r).replace("u\u0308", "v")
        plain = "".join(c for c in nfd if not unicodedata.combining(c))
        if plain and plain not in out:
            out.append(plain)
    return tuple(out)
