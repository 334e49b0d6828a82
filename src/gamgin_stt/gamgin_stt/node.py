"""audio/mic (+ wake, turn/state) -> transcript. ROS wiring only; the work is in core.py.

Callbacks only validate and queue; one worker thread runs VAD and Whisper in order, so
a slow decode delays audio (queued, never dropped) instead of losing it.
"""

from __future__ import annotations

import queue
import statistics
import threading
import time
from collections import deque

import numpy as np

from gamgin_common import audio, codec, qos
from gamgin_common.paths import require_model
from gamgin_common.plugins import import_dotted
from gamgin_common.stage import StageError, StageNode, run_stage
from gamgin_common.stamps import ns_of, time_msg
from gamgin_interfaces.msg import AudioChunk, Transcript, TurnState, WakeEvent
from gamgin_stt.backends import ModelMissing, RecognizerConfig, load_recognizer
from gamgin_stt.core import SttConfig, Transcriber, TranscriptEvent
from gamgin_stt.segmenter import VadConfig
from gamgin_stt.vad import SAMPLE_RATE, SileroVad


class SttNode(StageNode):
    def __init__(self) -> None:
        super().__init__("stt")
        p = self.declare_parameter
        self.backend = str(p("backend", "ct2").value)
        self.rec_cfg = RecognizerConfig(
            model=str(p("model", "whisper-base").value),
            device=str(p("device", "cpu").value),
            compute_type=str(p("compute_type", "int8").value),
            beam_size=int(p("beam_size", 1).value),
            language=str(p("language", "auto").value),
            languages=list(p("languages", ["zh", "en"]).value),
            initial_prompt=str(p("initial_prompt", "").value),
            hotwords=str(p("hotwords", "金坚").value),
            cpu_threads=int(p("cpu_threads", 2).value),
            bucket_s=float(p("bucket_s", 1.0).value),
            min_tail_pad_s=float(p("min_tail_pad_s", 1.5).value),
            language_prior=float(p("language_prior", 2.0).value),
            language_decisive=float(p("language_decisive", 10.0).value),
            home_language=str(p("home_language", "zh").value),
            home_language_prior=float(p("home_language_prior", 3.0).value),
            uri=str(p("uri", "tcp://127.0.0.1:10300").value),
            timeout_s=float(p("wyoming_timeout_s", 10.0).value),
            fallback=str(p("wyoming_fallback", "ct2").value),
        )
        self.vad_model = str(p("vad_model", "silero_vad.onnx").value)
        self.vad_cfg = VadConfig(
            threshold=float(p("vad_threshold", 0.5).value),
            neg_threshold=float(p("vad_neg_threshold", 0.35).value),
            min_speech_ms=float(p("min_speech_ms", 96.0).value),
            pre_roll_ms=float(p("pre_roll_ms", 320.0).value),
            post_roll_ms=float(p("post_roll_ms", 96.0).value),
            hang_over_ms=float(p("hang_over_ms", 300.0).value),
            max_utterance_s=float(p("max_utterance_s", 15.0).value),
        )
        self.stt_cfg = SttConfig(
            mode=str(p("mode", "wake").value),
            listen_timeout_s=float(p("listen_timeout_s", 6.0).value),
            history_s=float(p("history_s", 3.0).value),
            partial_interval_s=float(p("partial_interval_s", 0.6).value),
            partial_max_backlog_s=float(p("partial_max_backlog_s", 0.3).value),
            speculative_final=bool(p("speculative_final", True).value),
            min_confidence=float(p("min_confidence", 0.2).value),
            no_speech_threshold=float(p("no_speech_threshold", 0.6).value),
            logprob_threshold=float(p("logprob_threshold", -1.0).value),
            turn_id_start=int(p("turn_id_start", 1).value),
            turn_ids_from_clock=bool(p("turn_ids_from_clock", True).value),
            early_end_ms=float(p("early_end_ms", 160.0).value),
            address_names=tuple(n for n in p("address_names", ["金坚"]).value if n),
            address_wait_s=float(p("address_wait_s", 3.0).value),
        )
        # "package.module:Name" of a (text, lang) -> bool check that a transcript is a
        # complete command (e.g. gamgin_devices.endpoint:CommandComplete); "" = none
        self.complete_utterance = str(p("complete_utterance", "").value)
        self.warmup = bool(p("warmup", True).value)
        # Always-on listening must not transcribe the robot's own voice: while the speaker
        # plays (audio/playback SPEAKING) and a short tail after, mic audio reaches the VAD
        # as silence. In wake mode the wake node gates instead (a barge-in wake is wanted).
        self.self_voice_gate = bool(p("self_voice_gate", True).value)
        self.self_voice_tail_s = float(p("self_voice_tail_s", 0.3).value)
        self._speaking_since = 0.0
        self._turn_speaking_since = 0.0  # the latched turn/state says SPEAKING (see below)
        self._gate_until = 0.0
        self.core: Transcriber | None = None
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._running = False
        self._resamplers: dict[int, audio.Resampler] = {}
        self._decoder = codec.ChunkDecoder()  # s16le, or Opus from a robot across Wi-Fi
        self._last_seq: int | None = None
        self._latencies: deque[float] = deque(maxlen=50)
        self._bad_input_until = 0.0
        for k, v in (("backend", self.backend), ("model", self.rec_cfg.model),
                     ("mode", self.stt_cfg.mode), ("language", self.rec_cfg.language)):
            self.health.value(k, v)

    # ------------------------------------------------------------------ lifecycle
    def configure_stage(self) -> None:
        try:
            self.stt_cfg.validate()
            self.vad_cfg.validate()
        except ValueError as exc:
            raise StageError(f"bad parameter: {exc}; fix config/stt.yaml") from exc
        try:
            vad_path = require_model(self.vad_model, "Silero VAD model")
        except FileNotFoundError as exc:
            raise StageError(str(exc)) from exc
        # Topics first: DDS discovery and matching (~1-2 s with a dozen peers) then run while
        # the model loads, instead of after it. No callback runs before the node spins.
        self.pub = self.stage_publisher(Transcript, "transcript", qos.EVENTS)
        self.stage_subscription(AudioChunk, "audio/mic", self._on_audio, qos.MIC_AUDIO_IN)
        self.stage_subscription(WakeEvent, "wake", self._on_wake, qos.EVENTS)
        self.stage_subscription(TurnState, "turn/state", self._on_turn_state, qos.STATE)
        self.stage_subscription(TurnState, "audio/playback", self._on_playback, qos.EVENTS)
        t0 = time.monotonic()
        try:
            rec = load_recognizer(self.backend, self.rec_cfg)
        except ModelMissing as exc:
            raise StageError(str(exc)) from exc
        except ValueError as exc:
            raise StageError(f"bad parameter: {exc}; fix config/stt.yaml") from exc
        except Exception as exc:
            raise StageError(
                f"cannot load Whisper model {self.rec_cfg.model!r} on {self.rec_cfg.device} "
                f"({self.rec_cfg.compute_type}): {exc}. Check the model directory, device and "
                f"compute_type (cpu: int8/int8_float32/float32)"
            ) from exc
        self.health.value("model_path", getattr(rec, "path", ""))
        self.health.value("load_s", f"{time.monotonic() - t0:.2f}")
        self.core = Transcriber(rec, SileroVad(vad_path), self.stt_cfg, self.vad_cfg,
                                log=self._log)
        # the check loads in the background (~0.5 s of intents): listening starts now, and
        # a restarted STT is back as fast as before; early ends begin once it is there
        threading.Thread(target=self._attach_complete, args=(self.core,), daemon=True,
                         name="stt-complete-check").start()

    def _attach_complete(self, core: Transcriber) -> None:
        check = self._load_complete()
        if check is not None and self.core is core:
            core.complete = check

    def _load_complete(self):
        """The complete-utterance check, or None. A missing plug-in costs only the early
        end of commands, so it is a warning, not a failure to listen."""
        dotted = self.complete_utterance
        if not dotted or self.stt_cfg.early_end_ms <= 0:
            self.health.value("early_end", "off")
            return None
        try:
            check = import_dotted(dotted)()
        except Exception as exc:
            msg = (f"complete_utterance {dotted!r} not loaded ({type(exc).__name__}: {exc}); "
                   "turns end after the full hang-over")
            self.get_logger().warning(msg)
            self.health.value("early_end", f"off: {exc}")
            return None
        self.health.value("early_end", f"{self.stt_cfg.early_end_ms:.0f} ms for {dotted}")
        return check

    def activate_stage(self) -> None:
        self._running = True
        self._worker = threading.Thread(target=self._work, name="stt-worker", daemon=True)
        self._worker.start()
        self.health.ok(self._status())

    def deactivate_stage(self) -> None:
        self._running = False
        if self._worker is not None:
            self._worker.join(timeout=5.0)
            self._worker = None

    def cleanup_stage(self) -> None:
        if self.core is not None:
            self.core.rec.close()
            self.core = None

    # ------------------------------------------------------------------ callbacks
    def _on_audio(self, msg: AudioChunk) -> None:
        if not self._running:
            return
        received = time.time_ns()
        try:
            fmt, samples = self._decoder(msg)
        except audio.MalformedAudio as exc:
            self._bad_input(f"audio/mic chunk seq {msg.seq} rejected: {exc}")
            return
        if self._decoder.concealed_frames:  # Opus chunks lost on the way, filled in by PLC
            self.health.value("concealed_frames", self._decoder.concealed_frames)
        if self._last_seq is None:
            # discovery done, audio flows: only now is a (re)started STT really listening
            self.health.value("mic", "receiving", notify=True)
        elif msg.seq != self._last_seq + 1 and msg.seq != 0:
            self.health.count("mic_gaps")
        self._last_seq = msg.seq
        if fmt.sample_rate != SAMPLE_RATE:
            if fmt.sample_rate not in self._resamplers:
                self.get_logger().warning(
                    f"audio/mic at {fmt.sample_rate} Hz: resampling to 16 kHz")
                self._resamplers = {fmt.sample_rate: audio.Resampler(fmt.sample_rate, SAMPLE_RATE)}
            samples = self._resamplers[fmt.sample_rate](samples)
        stamp = ns_of(msg.header.stamp) or received - len(samples) * 1_000_000_000 // SAMPLE_RATE
        if self._gated():
            samples = np.zeros_like(samples)  # keep the timeline, hear nothing
            self.health.count("self_voice_gated_chunks")
        if len(samples):
            self._queue.put(("audio", samples, stamp, received))

    def _on_playback(self, msg: TurnState) -> None:
        if msg.state == TurnState.SPEAKING:
            self._speaking_since = time.monotonic()
        else:  # finished or flushed: the room still rings for a moment -- from when it
            # finished: a reliable writer resends an outage's events once a link is back,
            # and a late IDLE must not deafen the STT as the user speaks again
            self._speaking_since = 0.0
            stamp = ns_of(msg.header.stamp)
            age = max(0.0, (time.time_ns() - stamp) / 1e9) if stamp else 0.0
            self._gate_until = time.monotonic() + max(0.0, self.self_voice_tail_s - age)

    def _gated(self) -> bool:
        if not self.self_voice_gate or self.stt_cfg.mode != "always_on":
            return False
        now = time.monotonic()
        # a SPEAKING without its IDLE (lost, speaker crashed) must not leave the robot deaf
        speaking = any(t and now - t < 300.0
                       for t in (self._speaking_since, self._turn_speaking_since))
        return speaking or now < self._gate_until

    def _on_wake(self, msg: WakeEvent) -> None:
        start = ns_of(msg.word_end) or ns_of(msg.header.stamp) or time.time_ns()
        self._queue.put(("wake", msg.turn_id, start))

    def _on_turn_state(self, msg: TurnState) -> None:
        kind = "cancel" if msg.state == TurnState.CANCELLED else "turn"
        self._queue.put((kind, msg.turn_id))
        # turn/state is latched, audio/playback is not: an STT that starts while the robot
        # speaks (the robot's fallback STT, woken during its "brain away" notice) learns
        # it here, or it would transcribe the robot's own voice. No tail from here: a
        # reconnecting reader gets the latched history at once, and an old IDLE must not
        # deafen it now (the live audio/playback IDLE sets the tail)
        self._turn_speaking_since = ((self._turn_speaking_since or time.monotonic())
                                     if msg.state == TurnState.SPEAKING else 0.0)

    # ------------------------------------------------------------------ worker
    def _work(self) -> None:
        if self.warmup and self.core is not None:
            # The first decode pays one-off allocations; a user's command must not. Done here,
            # after activation, not in configure: the node listens (and queues audio) at once,
            # and an utterance is still being spoken when this ~0.2 s decode is done, so a
            # restarted STT is back sooner and the first command still finds it warm.
            t0 = time.monotonic()
            try:
                self.core.rec.recognize(np.zeros(SAMPLE_RATE, dtype=np.float32), final=True,
                                        language="en")
                self.health.value("warm_s", f"{time.monotonic() - t0:.2f}")
            except Exception as exc:  # the real decodes will say what is wrong
                self.get_logger().warning(f"warm-up decode failed: {exc}")
        while self._running:
            try:
                item = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            core = self.core
            if core is None:
                continue
            try:
                if item[0] == "audio":
                    _, samples, stamp, received = item
                    backlog = (time.time_ns() - received) / 1e9
                    for ev in core.feed(samples, stamp, received, backlog):
                        self._publish(ev)
                elif item[0] == "wake":
                    core.open_window(item[1], item[2])
                elif item[0] == "cancel":
                    core.cancel(item[1])
                else:
                    core.note_turn(item[1])
            except Exception as exc:
                self.get_logger().error(f"stt worker: {type(exc).__name__}: {exc}")
                self.health.error(f"internal error: {exc}")
                self.health.count("worker_errors")
                continue
            self._refresh_health(core)

    def _publish(self, ev: TranscriptEvent) -> None:
        msg = Transcript()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = "stt"
        msg.turn_id = ev.turn_id
        msg.text = ev.text
        msg.language = ev.language
        msg.confidence = float(ev.confidence)
        msg.is_final = ev.is_final
        msg.speech_start = time_msg(ev.speech_start_ns)
        msg.speech_end = time_msg(ev.speech_end_ns)
        msg.source = "stt"
        self.pub.publish(msg)
        if ev.is_final:
            latency_ms = (time.time_ns() - ev.decided_ns) / 1e6 if ev.decided_ns else 0.0
            self._latencies.append(latency_ms)
            self.health.value("final_latency_ms", f"{latency_ms:.0f}")
            self.health.value("final_latency_p50_ms",
                              f"{statistics.median(self._latencies):.0f}")
            self.get_logger().info(
                f"turn {ev.turn_id} final {ev.text!r} ({ev.language}, conf {ev.confidence:.2f}); "
                f"{latency_ms:.0f} ms after end of speech was detected")

    def _refresh_health(self, core: Transcriber) -> None:
        for k, v in core.stats.items():
            self.health.value(k, v)
        if core.last_error:
            self.health.error(core.last_error)
        elif time.monotonic() >= self._bad_input_until:
            self.health.ok(self._status())

    def _status(self) -> str:
        core = self.core
        if core is None or not core.listening:
            return "idle (waiting for a wake)" if self.stt_cfg.mode == "wake" else "idle"
        return f"listening for turn {core.turn}" if core.turn else "listening"

    def _bad_input(self, reason: str) -> None:
        self.get_logger().error(reason)
        self.health.warn(reason)
        self.health.count("bad_chunks")
        self._bad_input_until = time.monotonic() + 5.0

    def _log(self, level: str, message: str) -> None:
        # one call line per severity: rclpy refuses a call site whose severity changes
        # ("Logger severity cannot be changed between calls"), which made the core's first
        # error after an info abort the worker's feed and lose the utterance
        log = self.get_logger()
        if level == "info":
            log.info(message)
        elif level == "warn":
            log.warning(message)
        else:
            log.error(message)


def main(args: list[str] | None = None) -> None:
    run_stage(SttNode, args)


if __name__ == "__main__":
    main()
