"""PCM audio as it travels in AudioChunk messages. Pure Python + numpy, no ROS.

Every node that touches audio validates, decodes and encodes through here, so a
malformed chunk is rejected the same way (with the same reason text) everywhere. Coded
audio ("opus") is validated here and decoded per stream by gamgin_common.codec.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ENCODINGS: dict[str, np.dtype] = {"s16le": np.dtype("<i2"), "f32le": np.dtype("<f4")}
# coded encodings: stateful per stream, decoded by gamgin_common.codec.ChunkDecoder
CODED_RATES: dict[str, tuple[int, ...]] = {"opus": (8000, 12000, 16000, 24000, 48000)}
MAX_SAMPLE_RATE = 192_000
MAX_CHANNELS = 8
# 10 s of 48 kHz stereo float: far above any chunk a node should send; a bigger one is
# an error upstream, and accepting it would stall a real-time consumer.
MAX_CHUNK_BYTES = 48_000 * 2 * 4 * 10


class MalformedAudio(ValueError):
    """A chunk that cannot be played or analysed; the message says why."""


@dataclass(frozen=True)
class AudioFormat:
    sample_rate: int
    channels: int
    encoding: str

    @property
    def bytes_per_frame(self) -> int:
        return ENCODINGS[self.encoding].itemsize * self.channels


def check_chunk(
    sample_rate: int,
    channels: int,
    encoding: str,
    data: bytes,
    end_of_stream: bool = False,
    max_bytes: int = MAX_CHUNK_BYTES,
) -> AudioFormat:
    """Validate a chunk's header against its payload; raise MalformedAudio with a reason."""
    if encoding in CODED_RATES:
        return _check_coded(sample_rate, channels, encoding, data, max_bytes)
    if encoding not in ENCODINGS:
        known = sorted([*ENCODINGS, *CODED_RATES])
        raise MalformedAudio(f"unknown encoding {encoding!r} (expected one of {known})")
    if not 0 < sample_rate <= MAX_SAMPLE_RATE:
        raise MalformedAudio(f"sample_rate {sample_rate} out of range (1..{MAX_SAMPLE_RATE})")
    if not 0 < channels <= MAX_CHANNELS:
        raise MalformedAudio(f"channels {channels} out of range (1..{MAX_CHANNELS})")
    fmt = AudioFormat(sample_rate, channels, encoding)
    n = len(data)
    if n == 0 and not end_of_stream:
        raise MalformedAudio("empty chunk that is not end_of_stream")
    if n > max_bytes:
        raise MalformedAudio(f"chunk of {n} bytes exceeds the {max_bytes}-byte limit")
    if n % fmt.bytes_per_frame:
        raise MalformedAudio(
            f"{n} bytes is not a whole number of {encoding} frames of {channels} channel(s)"
        )
    return fmt


def _check_coded(sample_rate: int, channels: int, encoding: str, data: bytes,
                 max_bytes: int) -> AudioFormat:
    # an opus chunk may be empty before end_of_stream: its samples wait in the encoder
    # for a whole 20 ms frame; the packets themselves are checked by the decoder
    if sample_rate not in CODED_RATES[encoding]:
        raise MalformedAudio(f"{encoding} at {sample_rate} Hz (expected one of "
                             f"{CODED_RATES[encoding]})")
    if channels != 1:
        raise MalformedAudio(f"{encoding} with {channels} channels (mono only)")
    if len(data) > max_bytes:
        raise MalformedAudio(f"chunk of {len(data)} bytes exceeds the {max_bytes}-byte limit")
    return AudioFormat(sample_rate, channels, encoding)


def decode(data: bytes, fmt: AudioFormat) -> np.ndarray:
    """Bytes -> float32 mono samples in [-1, 1] (channels averaged)."""
    if fmt.encoding in CODED_RATES:
        raise MalformedAudio(f"{fmt.encoding} is decoded per stream (codec.ChunkDecoder)")
    raw = np.frombuffer(data, dtype=ENCODINGS[fmt.encoding])
    samples = raw.astype(np.float32)
    if fmt.encoding == "s16le":
        samples /= 32768.0
    if fmt.channels > 1:
        samples = samples.reshape(-1, fmt.channels).mean(axis=1)
    if not np.all(np.isfinite(samples)):
        raise MalformedAudio("samples contain NaN or infinity")
    return samples


def encode(samples: np.ndarray, encoding: str = "s16le") -> bytes:
    """float32 mono samples in [-1, 1] -> bytes in `encoding` (clipped, not wrapped)."""
    if encoding == "s16le":
        return (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()
    if encoding == "f32le":
        return np.asarray(samples, dtype="<f4").tobytes()
    raise MalformedAudio(f"unknown encoding {encoding!r}")


class Resampler:
    """Streaming resampler (soxr) that keeps its filter state across chunks of one stream,
    so chunk boundaries do not click. Passes audio through when the rates match."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate, self.out_rate = in_rate, out_rate
        self._stream = None
        if in_rate != out_rate:
            import soxr

            self._stream = soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality="HQ")

    def __call__(self, samples: np.ndarray, last: bool = False) -> np.ndarray:
        if self._stream is None:
            return samples.astype(np.float32, copy=False)
        return self._stream.resample_chunk(samples.astype(np.float32, copy=False), last=last)


def resample(samples: np.ndarray, in_rate: int, out_rate: int) -> np.ndarray:
    """One-shot resampling of a whole clip."""
    if in_rate == out_rate:
        return samples.astype(np.float32, copy=False)
    import soxr

    return soxr.resample(samples.astype(np.float32, copy=False), in_rate, out_rate, quality="HQ")


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if len(samples) else 0.0
