"""Microphone -> audio/mic: 16 kHz mono AudioChunks of chunk_ms each (s16le, or Opus for a
brain across Wi-Fi), with the robot's own voice (audio/reference from the speaker node)
cancelled out (aec.py)."""

from __future__ import annotations

import queue
import threading
import time

import numpy as np
from rclpy.time import Time
from std_msgs.msg import Bool

from gamgin_audio import devices
from gamgin_audio.aec import DeviceClock, EchoCanceller
from gamgin_common import audio, codec, qos
from gamgin_common.stage import StageError, StageNode, run_stage
from gamgin_interfaces.msg import AudioChunk


class MicNode(StageNode):
    def __init__(self) -> None:
        super().__init__("mic")
        p = self.declare_parameter
        self.device = str(p("device", "").value)
        self.pulse_source = str(p("pulse_source", "").value)
        self.sample_rate = int(p("sample_rate", 16000).value)
        self.chunk_ms = int(p("chunk_ms", 20).value)
        self.gain = float(p("gain", 1.0).value)
        # PortAudio's "high" default input latency lets the ALSA->Pulse path buffer up to
        # seconds of audio and deliver it in bursts: the STT then hears the user late.
        self.latency = str(p("latency", "low").value)
        if not 10 <= self.chunk_ms <= 100:
            raise ValueError(f"chunk_ms {self.chunk_ms} out of range 10..100")
        # "opus" when the STT is on another host: ~1/11 of the bandwidth (README)
        self.encoding = str(p("encoding", "s16le").value)
        self.opus_bitrate = int(p("opus_bitrate", codec.DEFAULT_BITRATE).value)
        if self.encoding == codec.OPUS and self.chunk_ms % codec.FRAME_MS:
            # whole 20 ms Opus frames per chunk: no chunk waits in the encoder
            raise ValueError(f"chunk_ms {self.chunk_ms} with encoding opus: use a multiple "
                             f"of {codec.FRAME_MS}")
        self.frames = self.sample_rate * self.chunk_ms // 1000
        self.aec: EchoCanceller | None = None
        self.aec_on = bool(p("aec", True).value)
        self.aec_tail_ms = int(p("aec_tail_ms", 160).value)
        self.aec_max_delay_ms = int(p("aec_max_delay_ms", 600).value)
        self._ref_resampler: audio.Resampler | None = None
        self._device_clock = DeviceClock(self.sample_rate)
        self._frames = 0  # captured since the stream started
        self._ref_next_ns = 0  # where the reference stream's next chunk should start
        self._ref_burst = (0, 0)  # (stamp of its first chunk, samples resampled since)
        self._ref_wall = 0.0  # monotonic time the last reference chunk came in
        self.aec_wait_s = float(p("aec_wait_ms", 150).value) / 1000.0
        self._stream = None
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._running = False
        self._seq = 0
        for k, v in (("device", self.device or "default"), ("pulse_source", self.pulse_source),
                     ("sample_rate", self.sample_rate), ("chunk_ms", self.chunk_ms),
                     ("aec", "on" if self.aec_on else "off"), ("encoding", self.encoding)):
            self.health.value(k, v)

    def configure_stage(self) -> None:
        try:
            self.encoder = codec.ChunkEncoder(self.encoding, self.opus_bitrate)
        except ValueError as exc:
            raise StageError(f"bad parameter: {exc}; fix config/audio.yaml") from exc
        except codec.CodecUnavailable as exc:
            raise StageError(str(exc)) from exc
        self._reference_decoder = codec.ChunkDecoder()
        self.pub = self.stage_publisher(AudioChunk, "audio/mic", qos.MIC_AUDIO)
        if self.aec_on:
            try:
                self.aec = EchoCanceller(self.sample_rate, self.frames,
                                         tail_ms=self.aec_tail_ms,
                                         max_delay_ms=self.aec_max_delay_ms)
            except ValueError as exc:
                raise StageError(f"bad parameter: {exc}; fix config/audio.yaml") from exc
            self.stage_subscription(AudioChunk, "audio/reference", self._on_reference,
                                    qos.REFERENCE_AUDIO)
            # latched: the wake node lets the user barge in only while this is true
            self.echo_pub = self.stage_publisher(Bool, "audio/echo_cancelled", qos.STATE)
            self._echo_cancelled: bool | None = None

    def _on_reference(self, msg: AudioChunk) -> None:
        """What the speaker plays, resampled to the microphone's rate, onto the canceller's
        timeline. A new burst (a gap in the stamps) restarts the resampler."""
        try:
            fmt, samples = self._reference_decoder(msg)
        except audio.MalformedAudio as exc:
            self.health.count("malformed_reference")
            self.log_throttled("malformed_reference", 5.0,
                               f"rejected audio/reference chunk: {exc}")
            return
        stamp = Time.from_msg(msg.header.stamp).nanoseconds
        rs = self._ref_resampler
        if rs is None or rs.in_rate != fmt.sample_rate or abs(stamp - self._ref_next_ns) > 5e6:
            rs = self._ref_resampler = audio.Resampler(fmt.sample_rate, self.sample_rate)
            self._ref_burst = (stamp, 0)
        self._ref_next_ns = stamp + len(samples) * 1_000_000_000 // fmt.sample_rate
        # the resampler hands out irregular pieces (0 or ~1.5 chunks at a time): place them
        # by the samples counted since the burst began, not by this chunk's stamp
        out = rs(samples)
        self._ref_wall = time.monotonic()
        start_ns, done = self._ref_burst
        if len(out):
            self.aec.add_reference(out, start_ns + done * 1_000_000_000 // self.sample_rate)
            self._ref_burst = (start_ns, done + len(out))

    def activate_stage(self) -> None:
        import sounddevice as sd

        dev = devices.select(self.device, self.pulse_source, "input")
        try:
            self._stream = sd.InputStream(
                samplerate=self.sample_rate, channels=1, dtype="float32",
                blocksize=self.frames, device=dev, callback=self._on_audio,
                latency=float(self.latency) if self.latency[:1].isdigit() else self.latency,
            )
            self._stream.start()
        except Exception as exc:
            self._stream = None
            raise StageError(
                f"cannot open microphone {dev!r}: {exc}. Devices: {devices.describe_devices()}"
            ) from exc
        self._running = True
        self._thread = threading.Thread(target=self._publish_loop, name="mic-publish", daemon=True)
        self._thread.start()
        self.health.ok(f"capturing from {dev or 'default'}")

    def _on_audio(self, indata: np.ndarray, frames: int, time_info, status) -> None:
        # PortAudio's thread: copy and hand over; never block here.
        if status.input_overflow:
            self.health.count("overflows")
        # stamped on the device's smoothed clock: callbacks come tens of ms late under
        # load, the samples do not (the echo canceller needs a steady timeline)
        now = time.time_ns() - frames * 1_000_000_000 // self.sample_rate
        self._device_clock.update(self._frames, now)
        first_sample_ns = self._device_clock.time_of(self._frames)
        self._frames += frames
        self._queue.put((first_sample_ns, indata[:, 0].copy()))

    def _publish_loop(self) -> None:
        while self._running:
            try:
                stamp_ns, samples = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            msg = AudioChunk()
            msg.header.stamp = Time(nanoseconds=stamp_ns).to_msg()
            msg.header.frame_id = "mic"
            msg.seq = self._seq
            msg.channels = 1
            msg.encoding = self.encoding
            if self.gain != 1.0:
                samples = samples * self.gain
            if self.aec is not None and len(samples) == self.frames:
                self._wait_for_reference(stamp_ns)
                samples = self.aec.process(samples, stamp_ns)
                self._aec_health()
            msg.sample_rate, msg.data = self.encoder(samples, self.sample_rate)
            self._seq += 1
            self.pub.publish(msg)
            self.health.count("chunks")

    def _wait_for_reference(self, stamp_ns: int) -> None:
        """While the speaker is streaming its reference, hold the block until the part the
        canceller needs has arrived (a few ms: it is published as it is handed to the
        device), so it learns from every block. Bounded by aec_wait_ms if the speaker stalls."""
        deadline = time.monotonic() + self.aec_wait_s
        while (time.monotonic() - self._ref_wall < 0.1 and time.monotonic() < deadline
               and self.aec.waiting_for(stamp_ns) > 0):
            time.sleep(0.002)

    def _aec_health(self) -> None:
        ec = self.aec
        if ec.converged != self._echo_cancelled:
            self._echo_cancelled = ec.converged
            self.echo_pub.publish(Bool(data=ec.converged))
            self.get_logger().info(f"echo {'cancelled' if ec.converged else 'not cancelled'} "
                                   f"(delay {ec.delay_ms} ms, {ec.echo_reduction_db:.1f} dB)")
            self.health.value("aec_converged", ec.converged, notify=True)
        if ec.delay_ms is not None:
            self.health.value("aec_delay_ms", f"{ec.delay_ms:.1f}")
        self.health.value("aec_echo_reduction_db", f"{ec.echo_reduction_db:.1f}")
        self.health.value("aec_late_blocks", ec.late_blocks)

    def deactivate_stage(self) -> None:
        self._running = False
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None


def main(args: list[str] | None = None) -> None:
    run_stage(MicNode, args)


if __name__ == "__main__":
    main()
