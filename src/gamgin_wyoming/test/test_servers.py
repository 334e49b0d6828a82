"""gamgin's stages served over Wyoming, spoken to by the `wyoming` library's own client, the
way Home Assistant speaks to them: one real server process on loopback, real models."""

from __future__ import annotations

import asyncio
import subprocess

import numpy as np
import pytest
from wyoming.asr import Transcribe, Transcript, TranscriptChunk
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
)
from wyoming.wake import Detect, Detection, NotDetected

from gamgin_common.audio import resample
from gamgin_common.paths import find_executable
from gamgin_common.wyoming_client import audio_events
from gamgin_stt.text import cer, wer
from gamgin_wake import synth

pytestmark = pytest.mark.integration

QUESTION = "What is your name?"
COMMAND_ZH = "把客厅的灯打开"


async def _exchange(uri: str, events: list[Event], until: tuple[str, ...],
                    timeout: float = 30.0) -> list[Event]:
    host, port = uri.removeprefix("tcp://").split(":")
    async with AsyncTcpClient(host, int(port), connect_timeout=5, read_timeout=timeout) as c:
        for ev in events:
            await c.write_event(ev)
        got: list[Event] = []
        while True:
            ev = await c.read_event()
            assert ev is not None, f"server closed the connection after {got}"
            got.append(ev)
            if ev.type in until:
                return got


def exchange(uri: str, events: list[Event], *until: str) -> list[Event]:
    return asyncio.run(_exchange(uri, events, until))


def speech_of(events: list[Event]) -> tuple[np.ndarray, int]:
    start = next(AudioStart.from_event(e) for e in events if AudioStart.is_type(e.type))
    pcm = b"".join(AudioChunk.from_event(e).audio for e in events if AudioChunk.is_type(e.type))
    return np.frombuffer(pcm, "<i2").astype(np.float32) / 32768.0, start.rate


def test_describe_lists_stt_tts_and_the_jinjian_wake_model(gamgin_all):
    (ev,) = exchange(gamgin_all.uri, [Describe().event()], "info")
    info = Info.from_event(ev)
    assert info.asr[0].models[0].name == "whisper-base"
    assert set(info.asr[0].models[0].languages) == {"zh", "en"}
    assert info.asr[0].supports_transcript_streaming
    assert {"zh", "en"} <= set(info.tts[0].voices[0].languages)
    assert info.tts[0].supports_synthesize_streaming
    model = info.wake[0].models[0]
    assert model.name == "金坚" and model.phrase == "金坚" and model.languages == ["zh"]


def test_transcribes_a_wav_in_english_and_in_mandarin(gamgin_all, tmp_path):
    en = synth.espeak(QUESTION, "en-us")
    got = exchange(gamgin_all.uri, [Transcribe(language="en").event(), *audio_events(en, 16000)],
                   "transcript")
    final = Transcript.from_event(got[-1])
    assert wer(QUESTION, final.text) <= 0.25, final.text
    assert final.language == "en"
    chunks = [TranscriptChunk.from_event(e).text for e in got if TranscriptChunk.is_type(e.type)]
    assert "".join(chunks) == final.text  # the streamed pieces say the same
    # Mandarin in gamgin's own voice (through its TTS server), at 24 kHz: the server
    # resamples to what Whisper wants; no language given, the household prior decides
    voice, rate = speech_of(exchange(gamgin_all.uri, [Synthesize(text=COMMAND_ZH).event()],
                                     "audio-stop"))
    got = exchange(gamgin_all.uri, [Transcribe().event(), *audio_events(voice, rate)],
                   "transcript")
    final = Transcript.from_event(got[-1])
    assert final.language == "zh" and cer(COMMAND_ZH, final.text) <= 0.3, final.text


def test_synthesizes_mandarin_and_english_whole_and_streamed(gamgin_all):
    text = "你好，我是金坚。Nice to meet you."
    audio, rate = speech_of(exchange(gamgin_all.uri, [Synthesize(text=text).event()],
                                     "audio-stop"))
    assert rate == 24000
    assert 1.5 < len(audio) / rate < 8.0 and float(np.abs(audio).max()) > 0.05
    # streamed text in pieces, as an LLM writes it: audio, then synthesize-stopped
    pieces = ["你好，", "我是金", "坚。今天", "天气很好。"]
    events = [SynthesizeStart().event(), *(SynthesizeChunk(text=p).event() for p in pieces),
              Synthesize(text="".join(pieces)).event(),  # sent for old servers: ignored
              SynthesizeStop().event()]
    got = exchange(gamgin_all.uri, events, "synthesize-stopped")
    assert SynthesizeStopped.is_type(got[-1].type)
    assert sum(AudioStop.is_type(e.type) for e in got) == 1  # one answer, spoken once
    streamed, rate = speech_of(got)
    assert 1.5 < len(streamed) / rate < 8.0


def test_detects_jinjian_and_not_other_speech(gamgin_all):
    speaker = synth.TEST_SPEAKERS[0]  # a voice the model was not enrolled with
    wake = synth.pad(speaker.say("金坚，把客厅的灯打开"), 0.5, 0.5)
    got = exchange(gamgin_all.uri, [Detect(names=["金坚"]).event(), *audio_events(wake, 16000)],
                   "detection", "not-detected")
    det = Detection.from_event(got[-1])
    assert Detection.is_type(got[-1].type) and det.name == "金坚"
    assert 300 < det.timestamp < 2500  # ms into the stream: the end of the word
    other = synth.pad(speaker.say("今天天气很好"), 0.5, 0.5)
    got = exchange(gamgin_all.uri, [Detect().event(), *audio_events(other, 16000)],
                   "detection", "not-detected")
    assert NotDetected.is_type(got[-1].type)


def test_a_stage_not_served_is_a_clear_error(wy, tmp_path):
    with wy.gamgin_server("--tts", log_dir=str(tmp_path)) as srv:
        got = exchange(srv.uri, [Transcribe().event()], "error")
        assert "--stt" in Error.from_event(got[-1]).text
    exe = str(find_executable("gamgin_wyoming", "wyoming_server"))
    bad = subprocess.run([exe, "--stt", "--uri", "http://127.0.0.1:1"], capture_output=True,
                         text=True, timeout=30)
    assert bad.returncode == 2 and "tcp://HOST:PORT" in bad.stderr
    none = subprocess.run([exe], capture_output=True, text=True, timeout=30)
    assert none.returncode == 2 and "--stt, --tts, --wake" in none.stderr


def test_odd_input_is_converted_or_answered_never_hung(gamgin_all):
    # 44.1 kHz stereo from a client that does not resample: converted to 16 kHz mono
    x = synth.pad(synth.espeak(QUESTION, "en-us"), 0.3, 0.3)
    stereo = np.repeat(resample(x, 16000, 44100)[:, None], 2, axis=1)
    pcm = (stereo * 32767).astype("<i2").tobytes()
    events = [Transcribe(language="en").event(), AudioStart(rate=44100, width=2, channels=2)
              .event()]
    events += [AudioChunk(rate=44100, width=2, channels=2, audio=pcm[i:i + 8192]).event()
               for i in range(0, len(pcm), 8192)]
    got = exchange(gamgin_all.uri, [*events, AudioStop().event()], "transcript")
    assert wer(QUESTION, Transcript.from_event(got[-1]).text) <= 0.25
    # no audio at all, nothing to say: an empty answer at once
    got = exchange(gamgin_all.uri, [Transcribe().event(), AudioStart(rate=16000, width=2,
                   channels=1).event(), AudioStop().event()], "transcript")
    assert Transcript.from_event(got[-1]).text == ""
    got = exchange(gamgin_all.uri, [Synthesize(text="  ").event()], "audio-stop")
    assert not any(AudioChunk.is_type(e.type) for e in got)
