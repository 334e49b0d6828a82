"""jieba on the shared, memory-mapped dictionary segments exactly as on its own."""

import subprocess
import sys

import jieba
import pytest

from gamgin_common import zh_words

TEXT = ("金坚，帮我把卧室的风扇打开，再把客厅的灯调暗一点。我的护照有效期到二〇三一年三月，"
        "记得提前三个月续签。The heater manual says 2000 watts. 南京市长江大桥欢迎你！"
        "研究生命起源，结婚的和尚未结婚的。")


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """jieba's own tokenizer and one on the trie built from the same dictionary."""
    own = jieba.Tokenizer()
    own.initialize()
    shared = jieba.Tokenizer()
    freq, total = zh_words.load(zh_words.build(shared, tmp_path_factory.mktemp("cache")))
    shared.FREQ, shared.total, shared.initialized = freq, total, True
    return own, shared


def test_segmentation_is_identical_in_every_mode(pair):
    own, shared = pair
    assert list(shared.cut(TEXT)) == list(own.cut(TEXT))
    assert list(shared.cut(TEXT, HMM=False)) == list(own.cut(TEXT, HMM=False))
    assert list(shared.cut_for_search(TEXT)) == list(own.cut_for_search(TEXT))
    assert list(shared.tokenize(TEXT)) == list(own.tokenize(TEXT))
    assert shared.total == own.total and len(shared.FREQ) == len(own.FREQ)


def test_words_added_at_run_time_are_used(pair):
    _, shared = pair
    assert "金坚" not in shared.FREQ
    shared.add_word("金坚", freq=100000)
    assert shared.FREQ["金坚"] == 100000 and "金坚" in list(shared.cut("金坚你好"))
    with pytest.raises(KeyError):
        shared.FREQ["no such word here"]


def test_a_damaged_cache_is_refused_not_misread(tmp_path):
    base = zh_words.build(jieba.Tokenizer(), tmp_path)
    freq = base.with_name(base.name + ".freq")
    freq.write_bytes(freq.read_bytes()[:-4])
    with pytest.raises(ValueError, match="disagree"):
        zh_words.load(base)


def test_without_a_writable_cache_jieba_loads_its_own_dictionary(tmp_path):
    """A fresh process (install() is once per process): the cache folder is a file."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    code = ("from pathlib import Path; from gamgin_common import zh_words; import jieba; "
            f"print(zh_words.install(Path({str(blocker / 'sub')!r})), list(jieba.cut('风扇打开')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "dict ['风扇', '打开']"
    assert "shared dictionary unavailable" in out.stderr


def test_character_readings_without_pypinyins_phrase_dictionaries():
    code = ("import sys; from gamgin_common.zh_words import readings; "
            "print(readings('调'), readings('绿'), readings('a'), 'pypinyin' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip() == "('diao', 'tiao') ('lv', 'lu') () False", out.stderr
