"""Language-aware text helpers shared by chunking, BM25 and answering. Pure Python."""

from __future__ import annotations

import re

import jieba

from gamgin_common import zh_words

CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_WORD = re.compile(r"[A-Za-z0-9]+(?:[.'\-][A-Za-z0-9]+)*|[\u3400-\u9fff\uf900-\ufaff]")

STOP_EN = set("""a an the is are was were be been of to in on at for and or but with by from
as it its this that these those what when where which who whom how why do does did my your
our their i you we they he she me us them his her please tell can could would should will
about any some there here have has had not no yes so if then than into out up down over
s t don say says said mention mentions mentioned written write wrote document file""".split())
STOP_ZH = set("""的 了 是 我 你 他 她 它 们 吗 呢 吧 啊 呀 在 有 和 与 及 或 就 都 也 还 很 这 那
个 一 一下 什么 怎么 怎样 多少 几 哪 哪里 哪儿 谁 请 告诉 给 说 讲 知道 要 会 能 可以 我的 你的
时候 什么时候 吗？ ？ ， 。 ！ 、 ： ； 里 里面 上面 写 写着 写了 提到 讲了 说了 内容 关于
一些 哪些 哪天 哪儿 在哪 在哪儿 哪个 什么样 是不是 有没有 天""".split())


def detect_lang(text: str) -> str:
    cjk = len(CJK.findall(text))
    latin = len(re.findall(r"[A-Za-z]", text))
    return "zh" if cjk and cjk * 3 >= latin else "en"


def count_tokens(text: str) -> int:
    """A model-free token estimate: one per CJK character, one per Latin word/number. Close
    to BERT wordpieces for Chinese and a little under for English."""
    return len(_WORD.findall(text))


def lexical_tokens(text: str) -> list[str]:
    """jieba words for Chinese (search mode: 有效期 also yields 有效), lower-cased English
    words; stop words and punctuation dropped. Used by BM25 and for overlap scores."""
    out = []
    zh_words.install()  # the graph's shared dictionary, before jieba loads its own
    for w in jieba.cut_for_search(text.lower()):
        w = w.strip()
        if not w or not re.search(r"\w", w) or w in STOP_ZH or w in STOP_EN:
            continue
        out.append(w)
    return out
