"""The microphone's audio as Opus over DDS, received best effort as across Wi-Fi: espeak
WAV -> PulseAudio null sink -> mic_node (encoding opus) -> audio/mic -> stt_node ->
transcript. A spoken command must still be understood."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray

from gamgin_common import qos, testing
from gamgin_interfaces.msg import AudioChunk, Transcript, WakeEvent
from gamgin_stt.text import wer

pytestmark = pytest.mark.integration

CONFIG = str(Path(__file__).resolve().parents[3] / "config" / "stt.yaml")
SENTENCE = "Please turn on the living room light in the kitchen"  # as test_stt_node.py


def now_msg() -> Time:
    ns = time.time_ns()
    return Time(sec=ns // 10**9, nanosec=ns % 10**9)


def test_a_command_heard_through_opus_is_understood(pulse, probe, node_env, tmp_path) -> None:
    env = {**node_env, "GAMGIN_AUDIO_QOS": "best_effort"}  # what a split graph's readers use
    diags = probe.collect(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
    mic_audio = probe.collect(AudioChunk, "/gamgin/audio/mic", qos.MIC_AUDIO)
    transcripts = probe.collect(Transcript, "/gamgin/transcript", qos.EVENTS)
    wav = testing.espeak_wav(SENTENCE, tmp_path / "cmd.wav", speed=150)
    with testing.null_sink("gamgin_test_opus_mic") as sink, testing.NodeProcess(
        "gamgin_audio", "mic_node", "mic", env, log_dir=str(tmp_path),
        params={"pulse_source": f"{sink}.monitor", "encoding": "opus", "opus_bitrate": 24000},
    ) as mic, testing.NodeProcess(
        "gamgin_stt", "stt_node", "stt", env, params_files=[CONFIG], log_dir=str(tmp_path),
        # a long listen window: on a loaded box the STT may run seconds behind the wake
        params={"listen_timeout_s": 10.0, "partial_max_backlog_s": 2.0},
    ) as stt:
        wake = probe.publisher(WakeEvent, "/gamgin/wake", qos.EVENTS)
        assert testing.wait_for(lambda: len(mic_audio) > 10, 30), mic.log()
        assert testing.wait_for(lambda: any(
            s.level == b"\x00" for s in probe.diagnostics_of(diags, "/gamgin/stt")), 60), stt.log()
        assert probe.wait_for_subscribers(wake, 1, 20), stt.log()
        wake.publish(WakeEvent(keyword="金坚", confidence=0.9, turn_id=61, backend="test",
                               word_end=now_msg()))
        time.sleep(0.3)
        testing.play_to_sink(wav, sink)
        assert testing.wait_for(lambda: any(t.is_final and t.turn_id == 61
                                            for t in list(transcripts)), 30), stt.log()
        chunks = list(mic_audio)
        stt_log = stt.log()
    final = next(t for t in list(transcripts) if t.is_final and t.turn_id == 61)
    assert wer(SENTENCE, final.text) <= 0.3, final.text  # the bound of the s16le test
    assert all(c.encoding == "opus" and c.sample_rate == 16000 for c in chunks)
    # one 20 ms frame a chunk: ~60 bytes of Opus at 24 kbit/s instead of 640 of PCM
    speech_chunks = [len(c.data) for c in chunks[-100:]]
    assert max(speech_chunks) < 200 and sum(speech_chunks) / len(speech_chunks) < 640 / 8
    assert "rejected" not in stt_log
