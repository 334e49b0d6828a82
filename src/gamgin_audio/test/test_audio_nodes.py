"""Microphone and speaker nodes through the real audio path: PortAudio -> PulseAudio null
sinks, real node processes, real DDS."""

import itertools
import os
import signal
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

from gamgin_common import audio, codec, qos, testing
from gamgin_interfaces.msg import AudioChunk, TurnState, WakeEvent

pytestmark = pytest.mark.integration


def chunks_of(samples: np.ndarray, rate: int, turn: int, ms: int = 100) -> list[AudioChunk]:
    step = rate * ms // 1000
    out = []
    for i, start in enumerate(range(0, len(samples), step)):
        part = samples[start:start + step]
        out.append(AudioChunk(turn_id=turn, seq=i, sample_rate=rate, channels=1, encoding="s16le",
                              data=audio.encode(part), end_of_stream=start + step >= len(samples)))
    return out


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    path = testing.espeak_wav("Hello, I am the robot dog. The living room light is on now.",
                              tmp_path_factory.mktemp("wav") / "speech.wav")
    return (*testing.read_wav(path), path)


def test_mic_publishes_what_the_virtual_microphone_hears(pulse, probe, node_env, speech, tmp_path):
    samples, rate, path = speech
    got = probe.collect(AudioChunk, "/gamgin/audio/mic", qos.MIC_AUDIO)
    with testing.null_sink("gamgin_test_mic") as mic, testing.NodeProcess(
        "gamgin_audio", "mic_node", "mic", node_env,
        params={"pulse_source": f"{mic}.monitor"}, log_dir=str(tmp_path),
    ) as node:
        assert testing.wait_for(lambda: len(got) > 10, 20), node.log()
        testing.play_to_sink(path, mic)
        time.sleep(0.5)
        received = list(got)
    assert all(len(c.data) == 640 and c.sample_rate == 16000 and c.encoding == "s16le"
               for c in received), "20 ms chunks of 16 kHz s16le"
    seqs = [c.seq for c in received]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "no gaps, in order"
    stamps = [c.header.stamp.sec + c.header.stamp.nanosec * 1e-9 for c in received]
    assert all(b > a for a, b in itertools.pairwise(stamps))
    heard = np.concatenate([audio.decode(bytes(c.data), audio.AudioFormat(16000, 1, "s16le"))
                            for c in received])
    assert heard_clearly(audio.resample(samples, rate, 16000), heard)


def heard_clearly(ref: np.ndarray, heard: np.ndarray) -> bool:
    """Each of the clip's first two seconds is found in the recording, shape intact. Per
    window, so one chunk lost under CPU load does not shift the whole comparison."""
    scores = [testing.best_correlation(ref[i:i + 16000], heard) for i in (0, 16000)]
    return min(scores) > 0.8 or print("correlations", scores)


@pytest.fixture(scope="module")
def speaker(pulse, probe, node_env, tmp_path_factory):
    with testing.null_sink("gamgin_test_speaker") as sink, testing.NodeProcess(
        "gamgin_audio", "speaker_node", "speaker", node_env,
        params={"pulse_sink": sink, "stall_s": 2.0},
        log_dir=str(tmp_path_factory.mktemp("speaker")),
    ) as node:
        pub = probe.publisher(AudioChunk, "/gamgin/audio/speech", qos.SPEECH_AUDIO)
        state = probe.publisher(TurnState, "/gamgin/turn/state", qos.STATE)
        wake = probe.publisher(WakeEvent, "/gamgin/wake", qos.EVENTS)
        playback = probe.collect(TurnState, "/gamgin/audio/playback", qos.EVENTS)
        diags = probe.collect(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
        assert probe.wait_for_subscribers(pub, 1, 20), node.log()
        assert testing.wait_for(
            lambda: any(s.message.startswith("playing") for s in
                        probe.diagnostics_of(diags, "/gamgin/speaker")), 20), node.log()
        assert probe.wait_for_subscribers(wake, 1, 20), node.log()
        yield {"sink": sink, "node": node, "pub": pub, "state": state, "playback": playback,
               "diags": diags, "wake": wake}


def test_speech_published_is_heard_on_the_speaker(speaker, speech):
    samples, rate, _ = speech
    with testing.Recorder(f"{speaker['sink']}.monitor") as rec:
        time.sleep(0.3)
        for msg in chunks_of(samples, rate, turn=5):
            speaker["pub"].publish(msg)
        assert testing.wait_for(
            lambda: any(m.turn_id == 5 and m.state == TurnState.IDLE for m in speaker["playback"]),
            len(samples) / rate + 5)
        heard = rec.stop()
    assert heard_clearly(audio.resample(samples, rate, 16000), heard)
    started = [m for m in speaker["playback"] if m.turn_id == 5 and m.state == TurnState.SPEAKING]
    assert len(started) == 1


def test_opus_speech_is_heard_and_a_lost_chunk_concealed(speaker, speech):
    """A brain's TTS across Wi-Fi: espeak's 22050 Hz speech as Opus (coded at 24 kHz) in
    100 ms chunks, one chunk lost on the way; the speaker decodes and fills the gap."""
    samples, rate, _ = speech
    enc, msgs, step = codec.ChunkEncoder("opus", 24000), [], rate // 10
    for i, start in enumerate(range(0, len(samples), step)):
        last = start + step >= len(samples)
        r, data = enc(samples[start:start + step], rate, stream=6, last=last)
        msgs.append(AudioChunk(turn_id=6, seq=i, sample_rate=r, channels=1, encoding="opus",
                               data=data, end_of_stream=last))
    assert sum(len(m.data) for m in msgs) < len(samples) * 2 / 8  # s16le would be 2 B/sample
    with testing.Recorder(f"{speaker['sink']}.monitor") as rec:
        time.sleep(0.3)
        for msg in msgs:
            if msg.seq != 25:  # 2.5 s in: after the two seconds compared below
                speaker["pub"].publish(msg)
        assert testing.wait_for(
            lambda: any(m.turn_id == 6 and m.state == TurnState.IDLE for m in speaker["playback"]),
            len(samples) / rate + 5)
        heard = rec.stop()
    assert heard_clearly(audio.resample(samples, rate, 16000), heard)

    def concealed() -> list[int]:  # 100 ms is ~5 Opus frames (the resampler's output varies)
        return [int(kv.value) for m in list(speaker["diags"]) for st in m.status
                if st.name == "/gamgin/speaker" for kv in st.values if kv.key == "concealed_frames"]

    assert testing.wait_for(concealed, 5), speaker["node"].log()
    assert 4 <= concealed()[-1] <= 6, concealed()


def play_then_stop(speaker, turn: int, stop) -> float:
    """Seconds of a 4 s tone heard when `stop()` is called 0.5 s into its playback."""
    rate = 24000
    t = np.arange(rate * 4) / rate
    tone = (0.4 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
    with testing.Recorder(f"{speaker['sink']}.monitor") as rec:
        time.sleep(0.2)
        for msg in chunks_of(tone, rate, turn=turn):
            speaker["pub"].publish(msg)
        assert testing.wait_for(lambda: any(m.turn_id == turn and m.state == TurnState.SPEAKING
                                            for m in speaker["playback"]), 5)
        time.sleep(0.5)
        stop()
        time.sleep(1.0)
        heard = rec.stop()
    frames = heard[: len(heard) // 320 * 320].reshape(-1, 320)  # 20 ms frames at 16 kHz
    return float(np.sum(np.sqrt(np.mean(frames**2, axis=1)) > 0.05)) * 0.02


def test_cancel_silences_the_speaker_at_once(speaker):
    loud_s = play_then_stop(speaker, 6, lambda: speaker["state"].publish(
        TurnState(turn_id=6, state=TurnState.CANCELLED, reason="test")))
    # ~0.5 s played before the cancel; the rest of the 4 s tone must never be heard
    assert 0.2 < loud_s < 1.2, loud_s
    assert any(m.turn_id == 6 and m.state == TurnState.CANCELLED for m in speaker["playback"])


def test_malformed_chunks_are_counted_and_the_speaker_keeps_playing(speaker):
    bad = [
        AudioChunk(turn_id=7, seq=0, sample_rate=16000, channels=1, encoding="mp3", data=b"\0\0"),
        AudioChunk(turn_id=7, seq=1, sample_rate=16000, channels=1, encoding="s16le", data=b"\0"),
        AudioChunk(turn_id=7, seq=2, sample_rate=0, channels=1, encoding="s16le", data=b"\0\0"),
        AudioChunk(turn_id=7, seq=3, sample_rate=16000, channels=1, encoding="s16le", data=b""),
        AudioChunk(turn_id=7, seq=4, sample_rate=16000, channels=0, encoding="s16le", data=b"\0\0"),
        AudioChunk(turn_id=7, seq=5, sample_rate=16000, channels=1, encoding="f32le",
                   data=b"\0" * (audio.MAX_CHUNK_BYTES + 4)),
    ]
    for msg in bad:
        speaker["pub"].publish(msg)

    def malformed() -> int:
        for s in reversed(speaker["diags"] and probe_statuses(speaker)):
            for kv in s.values:
                if kv.key == "malformed_chunks":
                    return int(kv.value)
        return 0

    assert testing.wait_for(lambda: malformed() >= len(bad), 10), malformed()
    assert speaker["node"].alive()
    good = chunks_of(np.full(2400, 0.3, np.float32), 24000, turn=8)
    for msg in good:
        speaker["pub"].publish(msg)
    assert testing.wait_for(lambda: any(m.turn_id == 8 and m.state == TurnState.SPEAKING
                                        for m in speaker["playback"]), 5)


def probe_statuses(speaker) -> list:
    return [s for arr in list(speaker["diags"]) for s in arr.status if s.name == "/gamgin/speaker"]


def test_a_wake_word_silences_the_speaker_without_waiting_for_the_turn_node(speaker):
    # no turn node runs here: the wake event alone must flush the answer being spoken
    loud_s = play_then_stop(speaker, 20, lambda: speaker["wake"].publish(
        WakeEvent(keyword="金坚", confidence=0.9, turn_id=21, backend="test")))
    assert 0.2 < loud_s < 1.2, loud_s
    assert any(m.turn_id == 20 and m.state == TurnState.CANCELLED for m in speaker["playback"])
    # a stale wake (an older turn) flushes nothing: the next answer plays to its end
    speaker["wake"].publish(WakeEvent(keyword="金坚", confidence=0.9, turn_id=3, backend="test"))
    for msg in chunks_of(np.full(4800, 0.3, np.float32), 24000, turn=22):
        speaker["pub"].publish(msg)
    assert testing.wait_for(lambda: any(m.turn_id == 22 and m.state == TurnState.IDLE
                                        for m in speaker["playback"]), 5)


def test_a_bad_echo_canceller_parameter_is_reported_and_the_node_stays_up(pulse, probe,
                                                                          node_env, tmp_path):
    diags = probe.collect(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
    with testing.null_sink("gamgin_test_mic_bad") as mic, testing.NodeProcess(
        "gamgin_audio", "mic_node", "mic", node_env,
        params={"pulse_source": f"{mic}.monitor", "aec_tail_ms": 5}, log_dir=str(tmp_path),
    ) as node:
        def reported() -> bool:
            return any(s.level == DiagnosticStatus.ERROR and "bad parameter" in s.message
                       and "aec" in s.message for s in probe.diagnostics_of(diags, "/gamgin/mic"))

        assert testing.wait_for(reported, 20), node.log()
        assert node.alive()


def test_an_idle_speaker_counts_underruns_instead_of_printing_them(pulse, probe, node_env,
                                                                   tmp_path):
    """`gamgin up` on a null sink printed libasound's "underrun occurred" for every late
    block. Idle a few seconds, then stalled as an overloaded CPU stalls it (SIGSTOP, longer
    than the device buffer): the log keeps at most the 1st/10th/100th… summary line, and
    the underruns are counted on /diagnostics."""
    diags = probe.collect(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
    fqn = "/gamgin/idle/speaker"
    with testing.null_sink("gamgin_test_idle") as sink, testing.NodeProcess(
        "gamgin_audio", "speaker_node", "speaker", node_env, namespace="/gamgin/idle",
        params={"pulse_sink": sink}, log_dir=str(tmp_path),
    ) as node:
        def values() -> dict[str, str]:
            latest = probe.diagnostics_of(diags, fqn)[-1:]
            return {kv.key: kv.value for s in latest for kv in s.values}

        assert testing.wait_for(lambda: any(s.message.startswith("playing") for s in
                                            probe.diagnostics_of(diags, fqn)), 20), node.log()
        time.sleep(3.0)  # idle: silence is played, nothing is queued
        for _ in range(5):
            os.kill(node.proc.pid, signal.SIGSTOP)
            time.sleep(0.3)
            os.kill(node.proc.pid, signal.SIGCONT)
            time.sleep(0.3)

        def counted() -> int:
            v = values()
            return int(v.get("underflows", 0)) + int(v.get("alsa_underruns", 0))

        assert testing.wait_for(lambda: counted() >= 1, 10), (values(), node.log())
        assert values().get("latency_ms") == "80", values()
        log = node.log()
        assert node.alive(), log
    assert "underrun occurred" not in log, log
    assert len([ln for ln in log.splitlines() if "underrun" in ln]) <= 3, log


def test_a_stream_whose_end_is_lost_ends_after_stall_s_and_a_repeated_end_is_ignored(speaker):
    """Best-effort speech from another host: the last chunk (the end) of turn 30 is lost,
    so the robot would stay "speaking"; after stall_s (2 s here) the speaker ends the turn.
    Turn 31's end comes twice (the TTS repeats an empty end marker on lossy links): the
    second is no seq gap and no second playback."""
    tone = np.full(4800, 0.3, np.float32)  # 0.2 s
    n_pb = len(speaker["playback"])
    lost_end = chunks_of(tone, 24000, turn=30)
    t0 = time.monotonic()  # the stall counts from the last chunk, received after this
    for msg in lost_end[:-1]:
        speaker["pub"].publish(msg)
    assert testing.wait_for(lambda: any(m.turn_id == 30 and m.state == TurnState.SPEAKING
                                        for m in speaker["playback"][n_pb:]), 5)
    assert testing.wait_for(lambda: any(m.turn_id == 30 and m.state == TurnState.IDLE
                                        for m in speaker["playback"][n_pb:]), 10)
    waited = time.monotonic() - t0
    idle = next(m for m in speaker["playback"][n_pb:]
                if m.turn_id == 30 and m.state == TurnState.IDLE)
    assert "stalled" in idle.reason and 1.9 < waited < 7.0, (idle.reason, waited)
    speaker["pub"].publish(lost_end[-1])  # too late: dropped, not played again
    msgs = chunks_of(tone, 24000, turn=31)
    msgs.append(AudioChunk(turn_id=31, seq=len(msgs), sample_rate=24000, channels=1,
                           encoding="s16le", data=b"", end_of_stream=True))
    for msg in msgs:
        speaker["pub"].publish(msg)
    assert testing.wait_for(lambda: any(m.turn_id == 31 and m.state == TurnState.IDLE
                                        for m in speaker["playback"][n_pb:]), 5)
    time.sleep(0.5)
    mine = [(m.turn_id, m.state) for m in speaker["playback"][n_pb:]]
    assert mine == [(30, TurnState.SPEAKING), (30, TurnState.IDLE),
                    (31, TurnState.SPEAKING), (31, TurnState.IDLE)], mine
