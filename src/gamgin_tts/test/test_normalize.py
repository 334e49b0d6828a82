"""Text normalization: numbers read in the language around them, markup and emoji gone,
mixed Chinese/English split into runs."""

from __future__ import annotations

import cn2an
import pytest
from num2words import num2words

from gamgin_tts.normalize import normalize, split_languages


@pytest.mark.parametrize(("text", "spoken"), [
    ("温度25°C，湿度30%", "温度二十五摄氏度，湿度百分之三十"),
    ("2024-03-05开会", "二零二四年三月五日开会"),
    ("2024年", "二零二四年"),
    ("价格是3.5元，-5度", "价格是三点五元，负五度"),
    ("第3名，1/2的人", "第三名，二分之一的人"),
    ("共12,345人", "共一万二千三百四十五人"),
    ("电话13812345678", "电话一三八一二三四五六七八"),
    ("早上8:30开会", "早上八点三十分开会"),
    ("明天气温20~25℃", "明天气温二十到二十五摄氏度"),
    ("身高1.8m，体重60kg", "身高一点八米，体重六十公斤"),
])
def test_chinese_numbers_dates_units(text, spoken):
    assert normalize(text) == spoken


@pytest.mark.parametrize(("text", "spoken"), [
    ("It is 42.", "It is forty-two."),
    ("It costs $5.50 today", "It costs five dollars and fifty cents today"),
    ("Meet at 7:05 on 2024-03-05.", "Meet at seven oh five on March fifth, twenty twenty-four."),
    ("The 21st floor, 30% done", "The twenty-first floor, thirty percent done"),
    ("In 1999 it was 3.5 km away",
     "In nineteen ninety-nine it was three point five kilometers away"),
    ("3/4 of 1,000 people", "three fourths of one thousand people"),
])
def test_english_numbers_dates_units(text, spoken):
    assert normalize(text) == spoken


def test_numbers_come_from_the_libraries():
    # the same words cn2an / num2words give, not a table of ours
    assert normalize("有987654人") == f"有{cn2an.an2cn('987654')}人"
    assert normalize("There are 987654 people") == f"There are {num2words(987654)} people"


def test_markdown_urls_and_emoji_are_not_read():
    text = "## 提醒\n- **记得**带伞 ☔️👍🏽\n1. 打开[天气](https://example.com/w?x=1)看看 `code`"
    out = normalize(text)
    for junk in ("#", "*", "☔", "👍", "http", "example", "`", "[", "]", "("):
        assert junk not in out, (junk, out)
    assert "记得带伞" in out and "天气看看" in out and out.startswith("提醒")


def test_mixed_chinese_english_is_split_into_language_runs():
    runs = split_languages(normalize("我用iPhone拍了3张照片，然后用WiFi上传。"))
    assert [(r.lang, r.text) for r in runs] == [
        ("zh", "我用"), ("en", "iPhone"), ("zh", "拍了三张照片，然后用"), ("en", "WiFi"),
        ("zh", "上传。")]


def test_unsupported_characters_are_dropped_not_fatal():
    out = normalize("\x00\x07控制\ue000字符\u200d😀")
    assert out == "控制字符"
    assert split_languages("……！！") == []
