"""audio/speech -> speaker. Plays each turn's chunks in order, resampled to the device
rate; a newer turn or a cancelled turn (turn/state) flushes at once. A wake event flushes
directly, one DDS hop from the wake node instead of two through the turn node, because
barge-in latency is what the user hears."""

from __future__ import annotations

import queue
import threading
import time
from collections import deque

import numpy as np
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.time import Time
from std_msgs.msg import Header

from gamgin_audio import alsa, devices
from gamgin_audio.aec import DeviceClock
from gamgin_audio.playback import PlaybackEvent, SpeechQueue
from gamgin_common import audio, codec, qos
from gamgin_common.stage import StageError, StageNode, run_stage
from gamgin_interfaces.msg import AudioChunk, TurnState, WakeEvent


class SpeakerNode(StageNode):
    def __init__(self) -> None:
        super().__init__("speaker")
        p = self.declare_parameter
        self.device = str(p("device", "").value)
        self.pulse_sink = str(p("pulse_sink", "").value)
        self.sample_rate = int(p("sample_rate", 24000).value)
        self.block_ms = int(p("block_ms", 20).value)
        self.max_queue_s = float(p("max_queue_s", 300.0).value)
        # a turn's audio ran out and neither more nor its end came for this long: it ended
        # (its end_of_stream lost on a best-effort link); 0 = wait for the end forever
        self.stall_s = float(p("stall_s", 8.0).value)
        # audio buffered in the device, seconds or "low"/"high". "low" asks the pulse plugin
        # for ~9 ms (40 ms granted): on a loaded CPU the sound server then runs dry every
        # few blocks (200-400 xruns in 25 s with the CPU oversubscribed, measured); 80 ms
        # ran dry 1-5 times in the same test. The cost: up to 40 ms more of the answer
        # heard after a barge-in (the queue itself is still flushed within one block).
        self.latency = p("latency", "0.08", ParameterDescriptor(dynamic_typing=True)).value
        self.max_chunk_bytes = int(p("max_chunk_bytes", audio.MAX_CHUNK_BYTES).value)
        # s16le or Opus (a brain's TTS across Wi-Fi), lost Opus chunks concealed
        self._decoder = codec.ChunkDecoder(max_bytes=self.max_chunk_bytes)
        # what the speaker plays, for the microphone's echo canceller (barge-in)
        self.publish_reference = bool(p("publish_reference", True).value)
        self._ref_queue: queue.SimpleQueue = queue.SimpleQueue()
        self._ref_thread: threading.Thread | None = None
        self._ref_clock = DeviceClock(self.sample_rate)
        self._ref_latency_ns = 0  # from handing a block over to hearing it
        self._ref_frames = 0  # frames handed to the device since the stream started
        self._ref_quiet = self.sample_rate  # frames since the last non-silent block
        self.queue = SpeechQueue(self.max_queue_s, self.sample_rate, self._on_playback,
                                 stall_s=self.stall_s)
        self._resamplers: dict[int, audio.Resampler] = {}
        self._expected_seq: dict[int, int] = {}
        self._ended_turns: deque[int] = deque(maxlen=16)  # streams whose end came
        self._lock = threading.Lock()
        self._stream = None
        for k, v in (("device", self.device or "default"), ("pulse_sink", self.pulse_sink),
                     ("sample_rate", self.sample_rate)):
            self.health.value(k, v)

    def configure_stage(self) -> None:
        try:
            self._latency = devices.latency(self.latency)
        except ValueError as exc:
            raise StageError(f"bad parameter: {exc}; fix config/audio.yaml") from exc
        self.playback_pub = self.stage_publisher(TurnState, "audio/playback", qos.EVENTS)
        if self.publish_reference:
            self.reference_pub = self.stage_publisher(AudioChunk, "audio/reference",
                                                      qos.REFERENCE_AUDIO)
        self.stage_subscription(AudioChunk, "audio/speech", self._on_chunk, qos.SPEECH_AUDIO_IN)
        self.stage_subscription(TurnState, "turn/state", self._on_turn_state, qos.STATE)
        self.stage_subscription(WakeEvent, "wake", self._on_wake, qos.EVENTS)

    def activate_stage(self) -> None:
        import sounddevice as sd

        alsa.report_to(self, "underrun")  # xrun lines counted, not printed per block
        dev = devices.select(self.device, self.pulse_sink, "output")
        try:
            self._stream = sd.OutputStream(
                samplerate=self.sample_rate, channels=1, dtype="float32",
                blocksize=self.sample_rate * self.block_ms // 1000, device=dev,
                callback=self._on_device, latency=self._latency,
            )
            self._stream.start()
        except Exception as exc:
            self._stream = None
            raise StageError(
                f"cannot open speaker {dev!r}: {exc}. Devices: {devices.describe_devices()}"
            ) from exc
        self.health.value("latency_ms", round(float(self._stream.latency) * 1000))
        if self.publish_reference:
            self._ref_latency_ns = int(float(self._stream.latency) * 1e9)
            self._ref_thread = threading.Thread(target=self._reference_loop, daemon=True,
                                                name="speaker-reference")
            self._ref_thread.start()
        self.health.ok(f"playing to {dev or 'default'}")

    def deactivate_stage(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        if self._ref_thread is not None:
            self._ref_queue.put(None)
            self._ref_thread.join(timeout=1.0)
            self._ref_thread = None

    # ------------------------------------------------------------------ input
    def _on_chunk(self, msg: AudioChunk) -> None:
        try:
            fmt, samples = self._decoder(msg)
        except audio.MalformedAudio as exc:
            self.health.count("malformed_chunks")
            self.log_throttled("malformed_chunk", 1.0, f"rejected audio/speech chunk "
                               f"turn={msg.turn_id} seq={msg.seq}: {exc}")
            return
        if self._decoder.concealed_frames:  # Opus chunks lost on the way, filled in by PLC
            self.health.value("concealed_frames", self._decoder.concealed_frames)
        if msg.end_of_stream and not msg.data and msg.turn_id in self._ended_turns:
            return  # the TTS's repeated end marker (best-effort link): this one ended already
        with self._lock:
            expected = self._expected_seq.get(msg.turn_id, 0)
            if msg.seq != expected:
                self.health.count("seq_gaps")
            self._expected_seq[msg.turn_id] = msg.seq + 1
            rs = self._resamplers.get(msg.turn_id)
            if rs is None or rs.in_rate != fmt.sample_rate:
                rs = audio.Resampler(fmt.sample_rate, self.sample_rate)
                self._resamplers[msg.turn_id] = rs
            out = rs(samples, last=msg.end_of_stream)
            if msg.end_of_stream:
                self._resamplers.pop(msg.turn_id, None)
                self._expected_seq.pop(msg.turn_id, None)
                self._ended_turns.append(msg.turn_id)
            # keep the per-turn tables small: only recent turns matter
            for old in [t for t in self._resamplers if t < msg.turn_id - 4]:
                self._resamplers.pop(old, None)
                self._expected_seq.pop(old, None)
        if self.queue.push(msg.turn_id, out, msg.end_of_stream):
            self.health.count("chunks_played")
        else:
            self.health.count("chunks_dropped")

    def _on_turn_state(self, msg: TurnState) -> None:
        if msg.state == TurnState.CANCELLED:
            self.queue.cancel(msg.turn_id)
        elif msg.state == TurnState.LISTENING and msg.turn_id > self.queue.turn_id:
            # a new wake while speaking: barge-in; the old answer must stop now
            self.queue.cancel(msg.turn_id - 1)

    def _on_wake(self, msg: WakeEvent) -> None:
        # the turn node will announce LISTENING for this turn too; flushing here first
        # spares the user that hop. Wakes carry the turn they open: older ones are stale.
        if msg.turn_id > self.queue.turn_id:
            if self.queue.queued_seconds > 0:
                self.health.count("barge_ins")
            self.queue.cancel(msg.turn_id - 1)

    # ------------------------------------------------------------------ device
    def _on_device(self, outdata, frames: int, time_info, status) -> None:
        if status.output_underflow:
            self.health.count("underflows")
        block = self.queue.read(frames)
        outdata[:, 0] = block
        if self.publish_reference:
            self._reference(block, frames)

    def _reference(self, block: np.ndarray, frames: int) -> None:
        """PortAudio's thread: note the block and when it reaches the speaker, on the
        device's smoothed clock. Published while playing and for 0.5 s after."""
        self._ref_clock.update(self._ref_frames, time.time_ns())
        loud = bool(np.any(block))
        self._ref_quiet = 0 if loud else self._ref_quiet + frames
        if loud or self._ref_quiet <= self.sample_rate // 2:
            stamp = self._ref_clock.time_of(self._ref_frames) + self._ref_latency_ns
            self._ref_queue.put((stamp, self.queue.turn_id, block.copy()))
        self._ref_frames += frames

    def _reference_loop(self) -> None:
        seq = 0
        while True:
            item = self._ref_queue.get()
            if item is None:
                return
            stamp, turn_id, block = item
            msg = AudioChunk(header=Header(frame_id="speaker"), turn_id=turn_id, seq=seq,
                             sample_rate=self.sample_rate, channels=1, encoding="s16le",
                             data=audio.encode(block, "s16le"))
            msg.header.stamp = Time(nanoseconds=stamp).to_msg()
            self.reference_pub.publish(msg)
            seq += 1

    def _on_playback(self, ev: PlaybackEvent) -> None:
        state = {"started": TurnState.SPEAKING, "finished": TurnState.IDLE,
                 "stalled": TurnState.IDLE, "flushed": TurnState.CANCELLED}[ev.kind]
        reason = f"playback {ev.kind}"
        if ev.kind == "stalled":
            reason = f"playback finished (stalled: no end of stream in {self.stall_s:g} s)"
            self.health.count("streams_stalled")
            self.log_throttled("stalled", 5.0, f"turn {ev.turn_id}: its audio ran out and its "
                               f"end never came in {self.stall_s:g} s (lost on the link?): "
                               "the turn ends here")
        msg = TurnState(header=Header(frame_id="speaker"), turn_id=ev.turn_id, state=state,
                        reason=reason)
        msg.header.stamp = self.get_clock().now().to_msg()
        self.playback_pub.publish(msg)


def main(args: list[str] | None = None) -> None:
    run_stage(SpeakerNode, args)


if __name__ == "__main__":
    main()
