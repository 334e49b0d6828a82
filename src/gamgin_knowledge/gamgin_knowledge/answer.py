"""Extractive answers and relevance gates. Pure Python.

The default LLM (SmolLM2 135M) is English-only and often ignores a passage, so for a
question the index answers confidently the robot speaks the best matching sentence itself,
with its source: "护照.pdf 里写着：护照有效期至2031年5月17日。" Nothing here is generated.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from gamgin_knowledge.chunking import _cjk_edge, split_paragraphs, split_sentences
from gamgin_knowledge.text import CJK, count_tokens, lexical_tokens

# Words a question uses that the document says differently (过期 vs 有效期). Small on
# purpose: this carries the common "when does X expire / what is my X" questions.
EXPAND = {
    "过期": ["有效期", "到期", "截止", "有效"], "到期": ["有效期", "过期", "截止"],
    "失效": ["有效期", "到期"], "密码": ["口令", "password"], "电话": ["号码", "手机"],
    "地址": ["住址", "位于"], "生日": ["出生"], "expire": ["expiry", "expires", "valid",
                                                      "until", "expiration"],
    "expires": ["expiry", "valid", "until"], "password": ["passcode", "pin"],
    "birthday": ["born", "birth"], "phone": ["number", "telephone"],
}
_WHEN = re.compile(r"什么时候|何时|哪天|哪一天|几号|哪年|日期|\bwhen\b|\bdate\b|\bwhat day\b", re.I)
_HOW_MANY = re.compile(r"多少|几个|几位|几点|号码|\bhow (?:many|much|old|long)\b|\bnumber\b",
                       re.I)
_DATE = re.compile(r"\d{4}\s*年|\d{1,2}\s*月\s*\d{1,2}|\d{4}[-/.]\d{1,2}|\b(?:jan|feb|mar|apr|"
                   r"may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b", re.I)
_NUMBER = re.compile(r"\d")
_WHERE = re.compile(r"哪里|哪儿|在哪|什么地方|位置|\bwhere\b|\baddress\b|\blive\b", re.I)
_PLACE = re.compile(r"放在|放到|位于|住在|存放|在.{1,12}(?:里|上|下|旁|边)|\blives? at\b|"
                    r"\blocated\b|\b(?:street|road|avenue|lane|drive)\b|\bat \d+", re.I)
JOKE = re.compile(r"笑话|段子|逗我|讲个好玩|搞笑|\bjokes?\b|make me laugh|something funny|"
                  r"\bfunny\b", re.I)


def query_terms(query: str) -> list[str]:
    terms = lexical_tokens(query)
    extra = [e for t in terms for e in EXPAND.get(t, [])]
    return list(dict.fromkeys(terms + extra))


def coverage(query: str, text: str, idf: Callable[[str], float] | None = None,
             need_key: bool = True) -> float:
    """Share of the question's content words found in ``text`` (synonyms count), each
    weighted by its IDF in the index (else by length), so 护照 outweighs 放在. 0 when the
    question's most specific word is missing: "钥匙放在哪里" is not answered by a sentence
    that only shares 放在."""
    base = lexical_tokens(query)
    if not base:
        return 0.0
    have = set(lexical_tokens(text))
    low = text.lower()
    weight = idf or (lambda t: float(min(len(t), 4)))
    total = got = 0.0
    key, key_w, key_hit = None, -1.0, False
    for t in base:
        w = weight(t)
        # substrings only for Chinese (jieba may cut 钥匙盒 whole); "time" is not in "sometimes"
        cjk = CJK.search(t) is not None
        hit = t in have or (cjk and t in low) or any(
            (e in low) if CJK.search(e) else (e in have) for e in EXPAND.get(t, []))
        total += w
        got += w if hit else 0.0
        if w > key_w:
            key, key_w, key_hit = t, w, hit
    if need_key and key is not None and not key_hit:
        return 0.0
    return got / total


def answer_type_bonus(query: str, sentence: str) -> float:
    # "我的护照" is the owner's own: prefer 我的 sentences over 妈妈的 ones (我 is a stop word)
    mine = 0.15 if ("我的" in query and "我的" in sentence) or (
        re.search(r"\bmy\b", query, re.I) and re.search(r"\bmy\b", sentence, re.I)) else 0.0
    return mine + _type_bonus(query, sentence)


def _type_bonus(query: str, sentence: str) -> float:
    if _WHERE.search(query):
        return 0.3 if _PLACE.search(sentence) else 0.0
    if _WHEN.search(query):
        return 0.3 if _DATE.search(sentence) else 0.0
    if _HOW_MANY.search(query):
        return 0.2 if _NUMBER.search(sentence) else 0.0
    return 0.0


def best_sentence(query: str, passages: list, idf: Callable[[str], float] | None = None,
                  similarity: Callable[[list[str]], list[float]] | None = None
                  ) -> tuple[str, object, float] | None:
    """(sentence, its passage, score) of the sentence that best answers the query.

    Lexical: IDF-weighted coverage of the question's words, plus a bonus when the question
    asks "when"/"how many" and the sentence has a date/number. With ``similarity`` (the
    embedder's cosine to the question, for English) a paraphrase ("phone number" vs
    "can be reached on") also scores; the score is then the mean of the two."""
    cands: list[tuple[str, object, int, int, list[str]]] = []
    for rank, p in enumerate(passages):
        sentences = [s for para in split_paragraphs(p.text) for s in split_sentences(para)]
        for i, s in enumerate(sentences):
            if len(s) >= 4:
                cands.append((s, p, rank, i, sentences))
    if not cands:
        return None
    sims = similarity([c[0] for c in cands]) if similarity else None
    best = None
    for j, (s, p, rank, i, sentences) in enumerate(cands):
        if sims is None:
            score = coverage(query, s, idf)
        else:
            score = max(coverage(query, s, idf),
                        0.5 * (coverage(query, s, idf, need_key=False) + float(sims[j])))
        score += answer_type_bonus(query, s) - 0.05 * rank
        if best is None or score > best[2]:
            # a title alone ("暖气说明。") says nothing: speak the sentence after it too
            said = s
            if count_tokens(s) < 6 and i + 1 < len(sentences):
                nxt = sentences[i + 1]
                said += ("" if _cjk_edge(s, nxt) else " ") + nxt
            best = (said, p, score)
    return best


def carries(reply: str, sentence: str, query: str = "") -> bool:
    """Does ``reply`` say what ``sentence`` answers? Its numbers (the multi-digit ones when
    there are any: 2031 and 17 of "2031年5月17日", not the 5) must all be in the reply;
    without numbers, half of the words the sentence adds to the question must be."""
    nums = re.findall(r"\d+", sentence)
    nums = [n for n in nums if len(n) > 1] or nums
    if nums:
        have = set(re.findall(r"\d+", reply))
        return all(n in have for n in nums)
    asked = set(lexical_tokens(query))
    new = [t for t in dict.fromkeys(lexical_tokens(sentence)) if t not in asked]
    if not new:
        return bool(reply.strip())
    got = set(lexical_tokens(reply))
    low = reply.lower()
    hits = sum(1 for t in new if t in got or (CJK.search(t) is not None and t in low))
    return hits >= 0.5 * len(new)


def cite(p, lang: str) -> str:
    if lang == "zh":
        return f"{p.source}第{p.page}页" if p.page else p.source
    return f"{p.source}, page {p.page}" if p.page else p.source


def phrase(sentence: str, p, lang: str) -> str:
    sentence = sentence.strip()
    if lang == "zh":
        if not re.search(r"[。！？.!?]$", sentence):
            sentence += "。"
        return f"{cite(p, lang)}里写着：{sentence}" if p.source else sentence
    if not re.search(r"[.!?。！？]$", sentence):
        sentence += "."
    return f"According to {cite(p, lang)}: {sentence}" if p.source else sentence


def not_found(lang: str) -> str:
    return ("我在你的资料里没有找到相关的内容。" if lang == "zh"
            else "I couldn't find that in your documents.")
