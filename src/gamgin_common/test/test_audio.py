import numpy as np
import pytest

from gamgin_common import audio


def tone(seconds: float, rate: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("encoding", ["s16le", "f32le"])
def test_encode_decode_round_trip(encoding):
    x = tone(0.1, 16000)
    data = audio.encode(x, encoding)
    fmt = audio.check_chunk(16000, 1, encoding, data)
    y = audio.decode(data, fmt)
    assert np.max(np.abs(x - y)) < 1e-4


def test_stereo_is_mixed_to_mono():
    left, right = np.full(100, 0.5, np.float32), np.full(100, -0.1, np.float32)
    data = np.stack([left, right], axis=1).reshape(-1).astype("<f4").tobytes()
    y = audio.decode(data, audio.check_chunk(8000, 2, "f32le", data))
    assert y.shape == (100,) and np.allclose(y, 0.2)


def test_encode_clips_instead_of_wrapping():
    data = audio.encode(np.array([2.0, -2.0], np.float32), "s16le")
    assert list(np.frombuffer(data, "<i2")) == [32767, -32767]


@pytest.mark.parametrize(
    ("rate", "channels", "encoding", "data", "eos", "reason"),
    [
        (16000, 1, "mp3", b"\0\0", False, "unknown encoding"),
        (0, 1, "s16le", b"\0\0", False, "sample_rate 0"),
        (16000, 0, "s16le", b"\0\0", False, "channels 0"),
        (16000, 1, "s16le", b"\0\0\0", False, "not a whole number"),
        (16000, 2, "s16le", b"\0\0", False, "not a whole number"),
        (16000, 1, "s16le", b"", False, "empty chunk"),
        (16000, 1, "s16le", b"\0" * (audio.MAX_CHUNK_BYTES + 2), False, "exceeds"),
    ],
)
def test_malformed_chunks_are_rejected_with_a_reason(rate, channels, encoding, data, eos, reason):
    with pytest.raises(audio.MalformedAudio, match=reason):
        audio.check_chunk(rate, channels, encoding, data, eos)


def test_empty_end_of_stream_is_fine():
    audio.check_chunk(16000, 1, "s16le", b"", end_of_stream=True)


def test_nan_samples_are_rejected():
    data = np.array([0.1, np.nan], "<f4").tobytes()
    with pytest.raises(audio.MalformedAudio, match="NaN"):
        audio.decode(data, audio.check_chunk(16000, 1, "f32le", data))


def test_streaming_resampler_matches_one_shot_and_keeps_length():
    x = tone(1.0, 22050, 300.0)
    rs = audio.Resampler(22050, 16000)
    parts = [rs(x[i:i + 441]) for i in range(0, len(x), 441)]
    parts.append(rs(np.zeros(0, np.float32), last=True))
    y = np.concatenate(parts)
    assert abs(len(y) - 16000) <= 2
    ref = audio.resample(x, 22050, 16000)
    n = min(len(y), len(ref))
    # same signal: chunking must not add clicks
    assert np.max(np.abs(y[100:n - 100] - ref[100:n - 100])) < 1e-3


def test_resampler_passthrough_when_rates_match():
    x = tone(0.05, 16000)
    assert np.array_equal(audio.Resampler(16000, 16000)(x), x)
