"""Sound-alike words of the home put back in a transcript (gamgin_devices.soundalike)."""

import pytest

from gamgin_devices.intents import DeviceIntents
from gamgin_devices.registry import load_registry
from gamgin_devices.soundalike import (
    EnglishSoundAlike,
    SoundAlike,
    edit_distance,
    english_for_registry,
    for_registry,
    keys,
    loose_ipa,
)


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


# ---------------------------------------------------------------- English, by phonemes
@pytest.fixture(scope="module")
def home_en() -> EnglishSoundAlike:
    s = english_for_registry(load_registry())
    assert s is not None, "piper-tts (its in-process espeak-ng) is a runtime dependency"
    return s


@pytest.mark.parametrize(("heard", "meant"), [
    ("Turn on the team we", "Turn on the tv"),  # Whisper on an espeak "TV", seen in CI
    ("turn off the madroom light", "turn off the bedroom light"),
    ("switch off the living room right", "switch off the living room light"),
    ("turn on the TV", "turn on the tv"),  # a name as said: itself
])
def test_english_spans_that_sound_like_the_homes_names_are_replaced(home_en, heard, meant):
    assert home_en.correct(heard) == meant


@pytest.mark.parametrize("text", [
    "turn on the pen",  # one phoneme from "fan", but three-phoneme names must match exactly
    "I watched the team win", "what is the weather like today", "set it to 22",
])
def test_english_text_that_does_not_sound_like_a_name_is_left_alone(home_en, text):
    assert home_en.correct(text) == text


def test_english_matching_is_on_loose_phonemes_and_refuses_ties():
    ipa = {"tv": "tˌiːvˈiː", "team": "tˈiːm", "we": "wiː", "dv": "dˌiːvˈiː"}
    s = EnglishSoundAlike(["tv"], ipa.__getitem__)
    assert loose_ipa("tˈiːm wiː") == "timvi"  # stress, length and spaces gone, w ~ v
    assert s.nearest("team we") == "tv"
    both = EnglishSoundAlike(["tv", "dv"], ipa.__getitem__)  # d ~ t: the two sound alike
    assert both.nearest("team we") is None  # two names equally near: neither is guessed
    assert edit_distance("kitten", "sitting", 5) == 3 and edit_distance("abc", "xyzuvw", 2) == 3


def test_a_misheard_english_command_switches_the_device_and_chat_stays_chat():
    intents = DeviceIntents(warm=False)
    answer = intents.handle("Turn on the team we", "en", state={}, dry=True)
    assert answer is not None and [(a.device_id, a.on) for a in answer.actions] == [("tv", True)]
    # "tell me" sounds like "telly", but the corrected text is no command: it stays chat
    assert intents.handle("tell me a joke about the team we", "en", state={}, dry=True) is None


def test_the_english_sound_alike_does_not_load_the_onnx_voice():
    """piper's espeak bridge alone: importing `piper` would bring onnxruntime (12 MB) into
    the LLM process, which uses no other part of it."""
    import subprocess
    import sys

    code = ("import sys\nfrom gamgin_devices.intents import DeviceIntents\n"
            "di = DeviceIntents()\nassert di.handle('Turn on the team we', 'en').actions\n"
            "print(sorted(m for m in ('piper', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]", out.stdout
