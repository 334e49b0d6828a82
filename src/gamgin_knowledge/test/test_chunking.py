from gamgin_knowledge.chunking import SentenceChunker, split_paragraphs, split_sentences
from gamgin_knowledge.text import count_tokens, detect_lang, lexical_tokens


def test_sentences_split_at_chinese_and_english_ends():
    s = split_sentences("护照有效期至2031年。你知道吗？太好了！他说：“好的。”Dr. Lee is here. "
                        "Version 2.5 is out! Really?")
    assert s == ["护照有效期至2031年。", "你知道吗？", "太好了！", "他说：“好的。”",
                 "Dr. Lee is here.", "Version 2.5 is out!", "Really?"]


def test_pdf_line_breaks_are_joined_without_spaces_in_chinese():
    assert split_paragraphs("护照有效期至2031年5月17\n日，到期前\n\nnew para\ncontinues") == [
        "护照有效期至2031年5月17日，到期前", "new para continues"]


def test_chunks_respect_budget_overlap_and_pages():
    text = "".join(f"这是第{i}句话，内容是编号{i}的事实。" for i in range(40))
    chunks = SentenceChunker(budget=60, overlap=20).chunk([(1, text), (2, "第二页的句子。")])
    assert len(chunks) > 3
    for c in chunks[:-1]:
        assert count_tokens(c.text) <= 60
    # overlap: the next chunk starts with the last sentence(s) of the previous one
    first_sentences = split_sentences(chunks[1].text)
    assert first_sentences[0] in chunks[0].text
    # no sentence is ever cut in half
    for c in chunks:
        for s in split_sentences(c.text):
            assert s.endswith("。")
    assert chunks[-1].page == 2 and chunks[-1].text == "第二页的句子。"
    assert all(c.page == 1 for c in chunks[:-1])


def test_overlong_sentence_is_cut_at_clauses():
    s = "，".join(["一个很长的分句"] * 30) + "。"
    chunks = SentenceChunker(budget=40, overlap=8).chunk([(0, s)])
    assert len(chunks) > 3 and all(count_tokens(c.text) <= 40 for c in chunks)
    assert "".join(c.text for c in chunks).replace("\n", "").count("一个很长的分句") >= 30


def test_tokens_and_language():
    assert detect_lang("我的护照什么时候过期？") == "zh"
    assert detect_lang("When does my passport expire?") == "en"
    assert count_tokens("护照 expires soon") == 4
    toks = lexical_tokens("我的护照什么时候过期？")
    assert "护照" in toks and "过期" in toks and "的" not in toks
