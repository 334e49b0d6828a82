"""audio/mic -> wake (WakeEvent). ROS wiring only; detection is in backends/ and core.py."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

import numpy as np
from rclpy.time import Time
from std_msgs.msg import Bool

from gamgin_common import audio, codec, qos
from gamgin_common.paths import require_model
from gamgin_common.stage import StageError, StageNode, run_stage
from gamgin_interfaces.msg import AudioChunk, TurnState, WakeEvent
from gamgin_wake.backends import BACKENDS
from gamgin_wake.core import RATE, PlayedAudio, StreamClock, TurnIds, WakeBackend, WakeGate

# the played audio the own-voice check scores: the word (~1.3 s window) and the echo delay
OWN_VOICE_BEFORE_S, OWN_VOICE_AFTER_S = 2.0, 0.4
QUEUE_CHUNKS = 150  # 3 s of 20 ms chunks: a Whisper check or a CPU spike must not drop audio


class WakeNode(StageNode):
    def __init__(self) -> None:
        super().__init__("wake")
        p = self.declare_parameter
        self.backend_name = str(p("backend", "trained").value)
        self.keyword = str(p("keyword", "金坚").value)
        self.refractory_s = float(p("refractory_s", 2.0).value)
        self.barge_in = bool(p("barge_in", False).value)
        self.barge_in_with_aec = bool(p("barge_in_with_aec", True).value)
        self.self_voice_tail_s = float(p("self_voice_tail_s", 0.5).value)
        self.own_voice_check = bool(p("own_voice_check", True).value)
        self.own_voice_ratio = float(p("own_voice_ratio", 0.5).value)
        # trained
        self.model = str(p("model", "").value)
        self.score_threshold = float(p("score_threshold", 0.0).value)
        self.holdoff_s = float(p("holdoff_s", 1.0).value)
        self.patience = int(p("patience", 0).value)
        # trained + fewshot
        self.embedding_model = str(p("embedding_model", "speech-embedding.onnx").value)
        self.enrollment_dir = str(p("enrollment_dir", "").value)
        self.threshold = float(p("threshold", 0.09).value)
        self.window_s = float(p("window_s", 2.0).value)
        self.hop_s = float(p("hop_s", 0.16).value)
        self.verify = bool(p("verify", True).value)
        self.verify_model = str(p("verify_model", "whisper-base").value)
        self.verify_mode = str(p("verify_mode", "forced").value)
        self.verify_min_score = float(p("verify_min_score", -5.4).value)
        self.distance_weight = float(p("distance_weight", 10.0).value)
        self.verify_device = str(p("verify_device", "cpu").value)
        self.verify_compute_type = str(p("verify_compute_type", "int8").value)
        self.threads = int(p("threads", 1).value)
        # porcupine
        self.access_key = str(p("access_key", "").value)
        self.keyword_paths = [s for s in p("keyword_paths", [""]).value if s]
        self.model_path = str(p("model_path", "").value)
        self.sensitivities = [float(s) for s in p("sensitivities", [0.5]).value]
        self.library_path = str(p("library_path", "").value)

        self.backend: WakeBackend | None = None
        self.gate = WakeGate(self.refractory_s, self.barge_in, self.self_voice_tail_s,
                             barge_in_with_aec=self.barge_in_with_aec)
        self.turn_ids = TurnIds()
        self._gate_lock = threading.Lock()
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_CHUNKS)
        self._worker: threading.Thread | None = None
        self._running = False
        self._resamplers: dict[int, audio.Resampler] = {}
        self._ref_resamplers: dict[int, audio.Resampler] = {}
        # s16le or Opus, one decoder per topic (Opus keeps state along a stream)
        self._decoder, self._ref_decoder = codec.ChunkDecoder(), codec.ChunkDecoder()
        # what the speaker played: a wake heard over the robot's voice is checked against it
        self.played = PlayedAudio()
        self._played_lock = threading.Lock()
        self._mirror: Callable[[], WakeBackend] | None = None  # a detector for that check
        self._last_seq: int | None = None
        self._bad_audio_at = 0.0
        self._busy_max_ms = 0.0
        self._ready_msg = "ready"
        for k, v in (("backend", self.backend_name), ("keyword", self.keyword),
                     ("barge_in", self.barge_in), ("barge_in_with_aec", self.barge_in_with_aec),
                     ("refractory_s", self.refractory_s)):
            self.health.value(k, v)

    # ------------------------------------------------------------------ lifecycle
    def configure_stage(self) -> None:
        if self.backend_name not in BACKENDS:
            raise StageError(f"backend {self.backend_name!r} unknown; choose one of {BACKENDS}")
        self.backend = self._make_backend()
        self.wake_pub = self.stage_publisher(WakeEvent, "wake", qos.EVENTS)
        self.stage_subscription(AudioChunk, "audio/mic", self._on_mic, qos.MIC_AUDIO_IN)
        self.stage_subscription(TurnState, "audio/playback", self._on_playback, qos.EVENTS)
        self.stage_subscription(Bool, "audio/echo_cancelled", self._on_echo_cancelled, qos.STATE)
        self.stage_subscription(TurnState, "turn/state", self._on_turn_state, qos.STATE)
        if self.own_voice_check and self.barge_in_with_aec and not self.barge_in:
            self.stage_subscription(AudioChunk, "audio/reference", self._on_reference,
                                    qos.REFERENCE_AUDIO)

    def _make_backend(self) -> WakeBackend:
        if self.backend_name == "porcupine":
            from gamgin_wake.backends.porcupine import PorcupineBackend, PorcupineSetupError

            try:
                be = PorcupineBackend(self.keyword, self.access_key, self.keyword_paths,
                                      self.model_path, self.sensitivities, self.library_path)
            except PorcupineSetupError as exc:
                raise StageError(str(exc)) from exc
            self._ready_msg = f"listening for {be.keywords} (porcupine)"
            return be
        if self.backend_name == "trained":
            return self._make_trained()
        from pathlib import Path

        from gamgin_wake.backends.fewshot import FewShotBackend
        from gamgin_wake.embedding import SpeechEmbedding
        from gamgin_wake.templates import EnrollmentError, load_templates

        try:
            folder = Path(self.enrollment_dir) if self.enrollment_dir else None
            templates = load_templates(self.keyword, folder=folder)
            emb = SpeechEmbedding(require_model(self.embedding_model, "speech-embedding model"),
                                  self.threads)
            verifier = self._make_verifier() if self.verify else None
        except (EnrollmentError, FileNotFoundError, ValueError, RuntimeError) as exc:
            raise StageError(str(exc)) from exc
        # the own-voice check: DTW alone, with a looser distance bar
        self._mirror = lambda: FewShotBackend(self.keyword, templates, emb,
                                              self.threshold / self.own_voice_ratio, None,
                                              window_s=self.window_s, hop_s=self.hop_s)
        be = FewShotBackend(self.keyword, templates, emb, self.threshold, verifier,
                            self.verify_min_score, self.distance_weight, self.window_s, self.hop_s,
                            on_decision=self._on_candidate)
        self.health.value("templates", len(templates))
        self.health.value("verify", self.verify_mode if self.verify else "off")
        self._ready_msg = (f"listening for {self.keyword} (fewshot, {len(templates)} templates, "
                           f"check {self.verify_mode if self.verify else 'off'})")
        return be

    def _make_verifier(self):
        from gamgin_wake.verify import WhisperVerifier

        verifier = WhisperVerifier(
            require_model(self.verify_model, "Whisper model for the wake check"),
            self.keyword, self.verify_mode, threads=self.threads,
            device=self.verify_device, compute_type=self.verify_compute_type)
        verifier(np.zeros(RATE, np.float32))  # warm up: first call is slow
        return verifier

    def _make_trained(self) -> WakeBackend:
        from gamgin_wake.adapt import load_adaptation, model_path
        from gamgin_wake.backends.trained import TrainedBackend
        from gamgin_wake.classifier import WakeClassifier
        from gamgin_wake.embedding import SpeechEmbedding

        try:
            path = model_path(self.keyword, self.model)
            model = WakeClassifier.load(path)
            emb = SpeechEmbedding(require_model(self.embedding_model, "speech-embedding model"),
                                  self.threads)
            threshold, source = model.threshold, "the model's"
            adapted = load_adaptation(self.keyword, model, path)
            if adapted is not None:
                threshold, source = adapted["threshold"], "adapted to the owner's takes"
            if self.score_threshold > 0.0:
                threshold, source = self.score_threshold, "score_threshold"
            verifier = self._make_verifier() if self.verify else None
            # the own-voice check: stage 1 only, with a lower bar (in doubt, it was the robot)
            self._mirror = lambda: TrainedBackend(
                self.keyword, model, emb, threshold * self.own_voice_ratio, self.hop_s,
                holdoff_s=0.0, patience=1)
            be = TrainedBackend(self.keyword, model, emb, threshold, self.hop_s, self.holdoff_s,
                                verifier, self.verify_min_score, patience=self.patience,
                                on_decision=self._on_candidate)
        except (FileNotFoundError, ValueError, RuntimeError) as exc:
            raise StageError(str(exc)) from exc
        check = self.verify_mode if self.verify else "off"
        self.health.value("model", path.name)
        self.health.value("threshold", f"{threshold:.2f} ({source})")
        self.health.value("verify", check)
        self._ready_msg = (f"listening for {self.keyword} (trained {path.name}, threshold "
                           f"{threshold:.3f}: {source}, {be.patience} in a row; check {check})")
        return be

    def _on_candidate(self, decision: dict) -> None:
        # every stage-1 candidate with its scores: what a person tunes thresholds from
        self.health.count("candidates")
        self.health.value("last_candidate", {k: v for k, v in decision.items() if k != "end"})
        self.get_logger().info(f"candidate {decision}")

    def activate_stage(self) -> None:
        self._running = True
        self._worker = threading.Thread(target=self._work, name="wake-detect", daemon=True)
        self._worker.start()
        self.health.ok(self._ready_msg)

    def deactivate_stage(self) -> None:
        self._running = False
        if self._worker is not None:
            self._worker.join(timeout=2.0)
            self._worker = None

    def cleanup_stage(self) -> None:
        if self.backend is not None:
            self.backend.close()
            self.backend = None

    # ------------------------------------------------------------------ inputs
    @staticmethod
    def _samples(msg: AudioChunk, decoder: codec.ChunkDecoder,
                 resamplers: dict[int, audio.Resampler]) -> np.ndarray:
        """A chunk's samples at 16 kHz (one streaming resampler per input rate); raises
        audio.MalformedAudio."""
        fmt, samples = decoder(msg)
        if fmt.sample_rate == RATE:
            return samples
        if fmt.sample_rate not in resamplers:
            resamplers[fmt.sample_rate] = audio.Resampler(fmt.sample_rate, RATE)
        return resamplers[fmt.sample_rate](samples)

    def _on_mic(self, msg: AudioChunk) -> None:
        if not self._running:
            return
        try:
            samples = self._samples(msg, self._decoder, self._resamplers)
        except audio.MalformedAudio as exc:
            self.health.count("bad_chunks")
            self.health.warn(f"bad audio on audio/mic: {exc}")
            self._bad_audio_at = time.monotonic()
            self.log_throttled("bad_audio", 5.0, f"dropped a bad audio/mic chunk: {exc}")
            return
        restart = self._last_seq is not None and msg.seq <= self._last_seq  # mic restarted
        if self._last_seq is not None and msg.seq > self._last_seq + 1:
            self.health.count("mic_gaps")
        self._last_seq = msg.seq
        stamp = Time.from_msg(msg.header.stamp).nanoseconds * 1e-9
        try:
            self._queue.put_nowait((samples, stamp, restart))
        except queue.Full:
            self.health.count("dropped_chunks")

    def _on_playback(self, msg: TurnState) -> None:
        with self._gate_lock:
            self.gate.speaking("playback", msg.state == TurnState.SPEAKING, self._stamp(msg))

    def _on_echo_cancelled(self, msg: Bool) -> None:
        with self._gate_lock:
            changed = self.gate.echo_cancelled != bool(msg.data)
            self.gate.echo_cancelled = bool(msg.data)
        if changed:
            self.get_logger().info("the microphone's echo is " + (
                "cancelled: the user may interrupt" if msg.data else "not cancelled"))
        self.health.value("echo_cancelled", bool(msg.data), notify=True)

    def _on_reference(self, msg: AudioChunk) -> None:
        try:
            samples = self._samples(msg, self._ref_decoder, self._ref_resamplers)
        except audio.MalformedAudio as exc:
            self.health.count("bad_reference_chunks")
            self.log_throttled("bad_reference", 5.0, f"dropped a bad audio/reference chunk: {exc}")
            return
        with self._played_lock:
            self.played.add(samples, Time.from_msg(msg.header.stamp).nanoseconds * 1e-9)

    def _said_by_robot(self, word_end: float) -> bool | None:
        """Did the speaker play the wake word around ``word_end``? None: nothing played."""
        with self._played_lock:
            x = self.played.window(word_end - OWN_VOICE_BEFORE_S, word_end + OWN_VOICE_AFTER_S)
        if x is None or self._mirror is None:
            return None
        mirror = self._mirror()
        step = int(self.hop_s * RATE)  # as the stream is fed: each window scored
        return any(mirror.process(x[i:i + step]) for i in range(0, len(x), step))

    def _on_turn_state(self, msg: TurnState) -> None:
        with self._gate_lock:
            self.gate.speaking("turn", msg.state == TurnState.SPEAKING, self._stamp(msg))

    def _stamp(self, msg) -> float:
        t = Time.from_msg(msg.header.stamp).nanoseconds * 1e-9
        return t if t > 0 else self.get_clock().now().nanoseconds * 1e-9

    # ------------------------------------------------------------------ detection
    def _work(self) -> None:
        clock = StreamClock(RATE)
        while self._running:
            try:
                samples, stamp, restart = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            be = self.backend
            if be is None:
                continue
            if restart:
                be.reset()
            clock.add(len(samples), stamp)
            try:
                t0 = time.perf_counter()
                detections = be.process(samples)
                busy_ms = (time.perf_counter() - t0) * 1000
                if busy_ms > self._busy_max_ms:  # the worst chunk: a Whisper check
                    self._busy_max_ms = busy_ms
                    self.health.value("busy_ms_max", f"{busy_ms:.0f}")
            except Exception as exc:  # one bad window must not stop listening
                self.health.count("detector_errors")
                self.health.warn(f"detector error: {type(exc).__name__}: {exc}")
                self.log_throttled("detector_error", 5.0, f"detector error: {exc}", "error")
                be.reset()
                continue
            for det in detections:
                self._wake(det, clock)
            if self.health.level != 0 and time.monotonic() - self._bad_audio_at > 5.0 \
                    and self.health.message.startswith(("bad audio", "detector error")):
                self.health.ok(self._ready_msg)

    def _wake(self, det, clock: StreamClock) -> None:
        word_end = clock.time_of(det.end_sample)
        with self._gate_lock:
            why = self.gate.check(word_end)
            over_own_voice = why is None and self.gate.allowed_over_own_voice(word_end)
        if over_own_voice and self.own_voice_check:
            t0 = time.perf_counter()
            if self._said_by_robot(word_end):
                why = "own_voice"
            self.health.value("own_voice_check_ms", f"{(time.perf_counter() - t0) * 1000:.0f}")
        if why is None:
            with self._gate_lock:
                self.gate.fired(word_end)
        if why is not None:
            self.health.count(f"suppressed_{why}")
            self.get_logger().info(f"{det.keyword} heard but not woken ({why}) {det.detail}")
            return
        msg = WakeEvent(keyword=det.keyword, confidence=float(det.confidence),
                        turn_id=self.turn_ids.next(), backend=det.backend)
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = "wake"
        msg.word_end = Time(nanoseconds=int(word_end * 1e9)).to_msg()
        self.wake_pub.publish(msg)
        self.health.count("wakes")
        self.health.value("last_turn_id", msg.turn_id)
        latency = time.time() - word_end
        self.health.value("last_latency_s", f"{latency:.2f}")
        self.get_logger().info(f"wake {det.keyword!r} turn {msg.turn_id} conf "
                               f"{msg.confidence:.2f} {det.detail} latency {latency:.2f} s")


def main(args: list[str] | None = None) -> None:
    run_stage(WakeNode, args)


if __name__ == "__main__":
    main()
