"""gamgin's STT and TTS nodes (real processes over real DDS) using Home Assistant's own
Wyoming servers as real processes: wyoming-faster-whisper on the packaged Whisper base and
wyoming-piper with the packaged en_US-joe-medium voice. Then each server is killed in the
middle of a turn: the user gets an apology (STT) or the rest of the answer in espeak (TTS),
never silence or a hang."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray

from gamgin_common import audio, qos, testing
from gamgin_interfaces.msg import AudioChunk, TokenChunk, Transcript, WakeEvent
from gamgin_stt.text import wer
from gamgin_wake import synth

pytestmark = pytest.mark.integration

CONFIG = Path(__file__).resolve().parents[3] / "config"
QUESTION = "What is your name?"
CHUNK = 320  # 20 ms at 16 kHz, as the mic node sends


def stamp(t: float) -> Time:
    ns = int(t * 1e9)
    return Time(sec=ns // 10**9, nanosec=ns % 10**9)


def talk(pub, samples: np.ndarray, t0: float, seq0: int = 0, on_half=None) -> int:
    """Publish 16 kHz audio on audio/mic in real time, stamped from t0; returns the next seq."""
    seq = seq0
    half = len(samples) // 2
    for i in range(0, len(samples), CHUNK):
        if on_half is not None and i >= half:
            on_half()
            on_half = None
        msg = AudioChunk(sample_rate=16000, channels=1, encoding="s16le",
                         data=audio.encode(samples[i:i + CHUNK]), seq=seq)
        msg.header.stamp = stamp(t0 + i / 16000)
        pub.publish(msg)
        seq += 1
        time.sleep(max(0.0, t0 + (i + CHUNK) / 16000 - time.time()))
    return seq


def healthy(probe, diags, fqn: str, prefix: str = "") -> bool:
    return any(s.level == b"\x00" and s.message.startswith(prefix)
               for s in probe.diagnostics_of(diags, fqn))


@pytest.fixture(scope="module")
def diags(probe):
    return probe.collect(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)


def test_stt_node_transcribes_through_wyoming_faster_whisper_then_apologises_when_it_dies(
        wy, probe, node_env, diags, tmp_path):
    logs = str(tmp_path)
    transcripts = probe.collect(Transcript, "/gamgin/transcript", qos.EVENTS)
    tokens = probe.collect(TokenChunk, "/gamgin/tokens", qos.TOKENS)
    with wy.faster_whisper_server(logs) as whisper, testing.NodeProcess(
        "gamgin_stt", "stt_node", "stt", node_env, params_files=[str(CONFIG / "stt.yaml")],
        params={"backend": "wyoming", "uri": whisper.uri, "wyoming_fallback": "",
                # faster-whisper encodes a 30 s window, twice with language detection: on a
                # shared 2-core box that took over 5 s
                "wyoming_timeout_s": 20.0, "partial_interval_s": 0.0, "listen_timeout_s": 4.0},
        log_dir=logs,
    ) as stt, testing.NodeProcess(
        # the dialogue, to say the apology; its LLM is never reached for an empty transcript
        "gamgin_llm", "llm_node", "llm", node_env,
        params={"backend": "openai", "base_url": f"http://127.0.0.1:{wy.free_port()}/v1",
                "tools": ["music"], "warmup": False, "prefix_cache": False},
        log_dir=logs,
    ) as llm:
        mic = probe.publisher(AudioChunk, "/gamgin/audio/mic", qos.MIC_AUDIO)
        wake = probe.publisher(WakeEvent, "/gamgin/wake", qos.EVENTS)
        assert testing.wait_for(lambda: healthy(probe, diags, "/gamgin/stt"), 60), stt.log()
        assert testing.wait_for(lambda: healthy(probe, diags, "/gamgin/llm"), 60), llm.log()
        assert probe.wait_for_subscribers(mic, 1, 20) and probe.wait_for_subscribers(wake, 1, 20)
        speech = synth.pad(synth.espeak(QUESTION, "en-us"), 0.3, 1.2)

        def turn(turn_id: int, on_half=None) -> None:
            t0 = time.time()
            wake.publish(WakeEvent(keyword="金坚", confidence=0.9, turn_id=turn_id,
                                   backend="test", word_end=stamp(t0)))
            time.sleep(0.2)
            talk(mic, speech, t0 + 0.2, on_half=on_half)

        def final_of(turn_id: int) -> Transcript | None:
            return next((t for t in list(transcripts) if t.turn_id == turn_id and t.is_final),
                        None)

        turn(501)
        assert testing.wait_for(lambda: final_of(501) is not None, 20), stt.log() + whisper.log()
        got = final_of(501)
        assert wer(QUESTION, got.text) <= 0.25 and got.language == "en", got.text
        assert "Processing audio" in whisper.log()  # it was the remote that heard it

        # the service dies while the user is still speaking
        killed_at: list[float] = []
        turn(502, on_half=lambda: (whisper.kill(), killed_at.append(time.time())))
        assert testing.wait_for(lambda: final_of(502) is not None, 10), stt.log()
        assert final_of(502).text == ""  # nobody could hear it: an empty final, not silence
        assert time.time() - killed_at[0] < 10

        def apology() -> str:
            return "".join(c.text for c in list(tokens) if c.turn_id == 502)

        assert testing.wait_for(lambda: "没听清" in apology() or "catch" in apology(), 15), \
            llm.log()
        assert stt.alive() and llm.alive()


def test_tts_node_speaks_through_wyoming_piper_and_espeak_takes_over_when_it_dies(
        wy, probe, node_env, diags, tmp_path):
    logs = str(tmp_path)
    speech = probe.collect(AudioChunk, "/gamgin/audio/speech", qos.SPEECH_AUDIO)
    with wy.piper_server(logs) as piper, testing.NodeProcess(
        "gamgin_tts", "tts_node", "tts", node_env, params_files=[str(CONFIG / "tts.yaml")],
        params={"engine": "wyoming", "engine_zh": "wyoming", "wyoming_uri": piper.uri,
                "wyoming_timeout_s": 5.0, "max_lead_s": 0.0},
        log_dir=logs,
    ) as tts:
        assert testing.wait_for(lambda: healthy(probe, diags, "/gamgin/tts", "speaking with"),
                                60), tts.log() + piper.log()
        pub = probe.publisher(TokenChunk, "/gamgin/tokens", qos.TOKENS)
        assert probe.wait_for_subscribers(pub, 1, 20)

        def say(turn: int, text: str, on_first_audio=None) -> None:
            pieces = [text[i:i + 4] for i in range(0, len(text), 4)]
            for i, p in enumerate(pieces):
                pub.publish(TokenChunk(turn_id=turn, seq=i, text=p, route="llm"))
                if on_first_audio is not None and i == len(pieces) // 2:
                    assert testing.wait_for(lambda: of_turn(turn), 20), tts.log()
                    on_first_audio()
                time.sleep(0.02)
            pub.publish(TokenChunk(turn_id=turn, seq=len(pieces), text="", is_final=True,
                                   finish_reason="stop", route="llm"))

        def of_turn(turn: int) -> list[AudioChunk]:
            return [c for c in list(speech) if c.turn_id == turn]

        def ended(turn: int) -> bool:
            return any(c.end_of_stream for c in of_turn(turn))

        say(601, "Hello, I am Gamgin. 你好。")
        assert testing.wait_for(lambda: ended(601), 30), tts.log()
        chunks = of_turn(601)
        assert {c.sample_rate for c in chunks} == {22050}  # the Piper voice's own rate
        seconds = sum(len(c.data) for c in chunks) / 2 / 22050
        assert 1.0 < seconds < 8.0, seconds
        assert len(piper.log()) and piper.alive()

        # killed after the first sentence went out: the rest comes in espeak, and it ends
        t_kill: list[float] = []
        say(602, "The first sentence is fine. Then the server dies, and espeak goes on.",
            on_first_audio=lambda: (piper.kill(), t_kill.append(time.time())))
        assert testing.wait_for(lambda: ended(602), 20), tts.log()
        chunks = of_turn(602)
        assert [c.seq for c in chunks] == list(range(len(chunks)))
        after = sum(len(c.data) for c in chunks if c.header.stamp.sec >= int(t_kill[0]))
        assert after / 2 / 22050 > 1.0, "the sentences after the kill were spoken"
        assert "espeak speaks instead" in tts.log(), tts.log()
        assert tts.alive()
