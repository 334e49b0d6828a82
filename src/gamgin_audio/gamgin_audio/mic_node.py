"""Microphone -> audio/mic: 16 kHz mono s16le AudioChunks of chunk_ms each."""

from __future__ import annotations

import queue
import threading
import time

import numpy as np
from rclpy.time import Time

from gamgin_audio import devices
from gamgin_common import audio, qos
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
        self.frames = self.sample_rate * self.chunk_ms // 1000
        self._stream = None
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._running = False
        self._seq = 0
        for k, v in (("device", self.device or "default"), ("pulse_source", self.pulse_source),
                     ("sample_rate", self.sample_rate), ("chunk_ms", self.chunk_ms)):
            self.health.value(k, v)

    def configure_stage(self) -> None:
        self.pub = self.stage_publisher(AudioChunk, "audio/mic", qos.MIC_AUDIO)

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
        first_sample_ns = time.time_ns() - frames * 1_000_000_000 // self.sample_rate
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
            msg.sample_rate = self.sample_rate
            msg.channels = 1
            msg.encoding = "s16le"
            msg.data = audio.encode(samples * self.gain if self.gain != 1.0 else samples, "s16le")
            self._seq += 1
            self.pub.publish(msg)
            self.health.count("chunks")

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
