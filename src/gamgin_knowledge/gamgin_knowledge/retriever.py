"""The seam the dialogue node plugs in by dotted name. Pure Python (no rclpy).

``KnowledgeRetriever`` is both of gamgin_llm's plug-ins:
- a **retriever** (``retrieve(query, lang, k)``): sanitized passages the LLM may quote,
  [] when nothing is relevant, so chit-chat prompts stay clean;
- a **fast path** (``handle(text, lang)``): jokes, and extractive answers where the small
  LLM cannot be trusted (Chinese questions; by default English too), spoken with the
  source file. It never returns device actions: documents are data, not commands.

Several instances in one process (fast path + retriever) share one model and index.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from pathlib import Path
from typing import Any

from gamgin_knowledge import answer as ans
from gamgin_knowledge.core import BUILTIN, JOKE_FILES, KnowledgeBase, Passage
from gamgin_knowledge.guard import is_instruction
from gamgin_knowledge.text import detect_lang

_SHARED: dict[tuple, KnowledgeBase] = {}
MIN_COSINE = {"minilm": 0.45, "use": 0.3, "e5": 0.85}
_SHARED_LOCK = threading.Lock()


def shared_base(index_dir: str = "", embedder: str = "minilm",
                embedding_model: str = "", store: str = "faiss",
                database_url: str = "") -> KnowledgeBase:
    from gamgin_knowledge.backends import make_embedder
    from gamgin_knowledge.index import default_root, make_store

    root = Path(index_dir).expanduser() if index_dir else default_root()
    key = (str(root.absolute()), embedder, embedding_model, store, database_url)
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = KnowledgeBase(
                root, embedder_factory=lambda: make_embedder(embedder, embedding_model),
                store=make_store(store, root, database_url))
        return _SHARED[key]


class KnowledgeRetriever:
    def __init__(self, context: Any = None, index_dir: str = "", embedder: str = "minilm",
                 embedding_model: str = "", builtin_jokes: bool = True,
                 min_coverage: float = 0.5, min_cosine: float | None = None,
                 extractive_langs: list[str] | tuple[str, ...] = ("zh", "en"),
                 dense_weight_zh: float | None = None, seed: int | None = None,
                 kb: KnowledgeBase | None = None, store: str = "faiss",
                 database_url: str = "") -> None:
        from gamgin_knowledge.backends import MULTILINGUAL

        # ``kb``: the knowledge node passes its own base (one model, one index in memory)
        self.kb = kb if kb is not None else shared_base(index_dir, embedder, embedding_model,
                                                        store, database_url)
        # None: 0 for the English-only MiniLM (bench-kb), 1.0 for a multilingual embedder
        if dense_weight_zh is None:
            dense_weight_zh = 1.0 if embedder in MULTILINGUAL else 0.0
        self.kb.dense_weight["zh"] = dense_weight_zh
        self.min_coverage = min_coverage
        # cosine scales differ by model: USE's related pairs score ~0.35-0.6 and unrelated
        # ones < 0.15; MiniLM's 0.45+; E5 puts everything above 0.7 (bench-kb)
        self.min_cosine = min_cosine if min_cosine is not None else MIN_COSINE.get(embedder,
                                                                                   0.45)
        self.cosine_langs = {"en", "zh"} if embedder in MULTILINGUAL else {"en"}
        self.extractive_langs = set(extractive_langs)
        self._rng = random.Random(seed)
        self._recent: deque[str] = deque(maxlen=8)  # jokes not to repeat soon
        if builtin_jokes:
            try:
                self.kb.add([], builtin=JOKE_FILES)  # a no-op once they are in (content hash)
            except OSError as exc:  # a read-only index still answers from what it has
                print(f"[gamgin_knowledge] built-in jokes not added: {exc}")
        # load the model and index now, not on the first question
        self.kb.generation()
        _ = self.kb.embedder

    # ------------------------------------------------------------------ search
    def search(self, query: str, k: int = 3) -> list[Passage]:
        """Top-k passages from the owner's documents (built-in jokes only when the query
        asks for a joke), best first, with fused scores."""
        joke = bool(ans.JOKE.search(query))
        hits = self.kb.search(query, k=k * 4 + 8)
        hits = [p for p in hits if p.path.startswith(BUILTIN) == joke]
        return hits[:k]

    def relevant(self, query: str, p: Passage, lang: str = "") -> bool:
        lang = lang or detect_lang(query)
        if ans.coverage(query, p.text, self.kb.idf) >= self.min_coverage:
            return True
        # MiniLM is English: its cosine means little for Chinese text (a multilingual
        # embedder's does). A paraphrase ("how do I call Alice", 证件哪天失效) may miss the
        # most specific word, so the passage may also pass on the cosine or on the words
        # it does share
        return lang in self.cosine_langs and (p.dense >= self.min_cosine or ans.coverage(
            query, p.text, self.kb.idf, need_key=False) >= 0.8 * self.min_coverage)

    # ------------------------------------------------------------------ gamgin_llm seams
    def retrieve(self, query: str, lang: str, k: int) -> list[Passage]:
        if is_instruction(query):
            return []  # a command, not a question about documents
        if ans.JOKE.search(query):
            joke = self.joke(query, lang)
            return [joke] if joke else []
        return [p for p in self.search(query, k) if self.relevant(query, p, lang)]

    def handle(self, text: str, lang: str):
        from gamgin_llm.router import FastAnswer

        reply = self.reply(text, lang)
        return FastAnswer(text=reply, actions=[], route="knowledge") if reply else None

    def reply(self, text: str, lang: str) -> str | None:
        """What the fast path would say, or None to let the LLM (or another handler) answer."""
        lang = lang if lang in ("zh", "en") else detect_lang(text)
        if not text.strip() or is_instruction(text):
            return None
        if ans.JOKE.search(text):
            joke = self.joke(text, lang)
            if joke is None:
                return None
            return ("给你讲个笑话：" if lang == "zh" else "Here's one. ") + joke.text
        if lang not in self.extractive_langs:
            return None
        passages = self.retrieve(text, lang, 5)  # look wider than the prompt's 3
        best = ans.best_sentence(text, passages, self.kb.idf, self._similarity(text, lang))
        if best is None or best[2] < self.min_coverage:
            return None
        return ans.phrase(best[0], best[1], lang)

    def _similarity(self, query: str, lang: str):
        """Cosine of sentences to the query, in the languages the embedder knows."""
        if lang not in self.cosine_langs or self.kb.dense_weight.get(lang, 1.0) <= 0:
            return None

        def sim(sentences: list[str]) -> list[float]:
            from gamgin_knowledge.backends import embed_query

            q = embed_query(self.kb.embedder, [query])[0]
            return list(self.kb.embedder.embed(sentences) @ q)

        return sim

    # ------------------------------------------------------------------ answering
    def answer(self, query: str, passages: list[Passage], lang: str = "") -> str:
        """The extractive answer when a sentence of the relevant passages really answers
        the query, else "" (the knowledge/search service's ``answer``)."""
        lang = lang if lang in ("zh", "en") else detect_lang(query)
        if not query.strip() or is_instruction(query):
            return ""
        if ans.JOKE.search(query):
            return passages[0].text if passages and passages[0].path.startswith(BUILTIN) else ""
        fit = [p for p in passages if self.relevant(query, p, lang)]
        best = ans.best_sentence(query, fit, self.kb.idf, self._similarity(query, lang))
        if best is None or best[2] < self.min_coverage:
            return ""
        return ans.phrase(best[0], best[1], lang)

    def answer_extractively(self, query: str, passages: list[Passage], lang: str) -> str:
        """The best matching sentence, spoken naturally with its source."""
        best = ans.best_sentence(query, passages, self.kb.idf, self._similarity(query, lang))
        if best is None:
            return ans.not_found(lang)
        return ans.phrase(best[0], best[1], lang)

    def supports(self, reply: str, passages: list[Passage], query: str = "") -> bool:
        """Does an LLM reply carry what the passages say? With the question: the numbers
        (else the new words) of the sentence that answers it, so a draft that quotes some
        other number of the passage (the passport number for "when does it expire") fails.
        For a dialogue node that wants to fall back to ``answer_extractively``."""
        import re

        if not reply.strip():
            return False
        if query.strip():
            lang = detect_lang(query)
            best = ans.best_sentence(query, passages, self.kb.idf, self._similarity(query, lang))
            if best is not None:
                return ans.carries(reply, best[0], query)
        facts = {n for p in passages for n in re.findall(r"\d[\d:./-]*\d|\d", p.text)}
        if facts and not any(n in reply for n in facts):
            return False
        return any(ans.coverage(reply, p.text) >= 0.3 for p in passages) or bool(facts)

    def joke(self, query: str, lang: str) -> Passage | None:
        name = "jokes-zh.md" if lang == "zh" else "jokes-en.md"
        gen = self.kb.generation()
        pool = [c for c in gen.chunks if c.file == BUILTIN + name]
        if not pool:
            return None
        # "a joke about cats": prefer jokes that share a word; else any not told lately
        topical = [c for c in pool if ans.coverage(ans.JOKE.sub("", query), c.text) >= 0.5
                   and ans.JOKE.sub("", query).strip()]
        fresh = [c for c in (topical or pool) if c.text not in self._recent] or pool
        c = self._rng.choice(fresh)
        self._recent.append(c.text)
        return Passage(text=c.text, source="", page=0, score=1.0, path=c.file)


Retriever = KnowledgeRetriever  # the name config/llm.yaml's comment suggests
