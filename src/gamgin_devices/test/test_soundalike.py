"""Sound-alike words of the home put back in a Chinese transcript (gamgin_devices.soundalike)."""

import pytest

from gamgin_devices.registry import load_registry
from gamgin_devices.soundalike import SoundAlike, for_registry, keys


@pytest.fixture(scope="module")
def home() -> SoundAlike:
    return for_registry(load_registry())


@pytest.mark.parametrize(("heard", "meant"), [
    ("帮我把握式的灯关了", "帮我把卧室的灯关了"),  # wo shi
    ("把垫式打开", "把电视打开"),  # dian shi
    ("把热水气关了", "把热水器关了"),  # re shui qi
    ("把空调掉高一点", "把空调调高一点"),  # 调 has two readings: diao and tiao
    ("把客厅的等打开", "把客厅的灯打开"),  # a multi-character alias carries the single 灯
    ("把卧室的空调关了", "把卧室的空调关了"),  # already right: unchanged
])
def test_spans_that_sound_like_the_homes_words_are_replaced(home, heard, meant):
    assert home.correct(heard) == meant


@pytest.mark.parametrize("text", [
    "把空调调高两度",  # 两度 (liang du) is a word, not a misheard 亮度
    "把风水打开",  # 风水 is a word: not taken for 风扇 (feng shan: another syllable)
    "今天天气怎么样", "I like the fan", "等一下",
])
def test_real_words_and_other_text_are_left_alone(home, text):
    assert home.correct(text) == text


def test_merged_sounds_match_and_single_characters_are_never_replaced():
    s = SoundAlike(["卧室", "灯"])
    assert s.correct("我使") == "卧室"  # wo shi, whatever the characters
    assert s.correct("窝四") == "卧室"  # sh/s merged, as recognizers do
    assert s.correct("等") == "等"  # one syllable matches too much: 灯 deng is also 等
    assert keys("a灯") == []  # not all Han: no key
