"""Pure logic: text clean-up, error rates, the VAD state machine."""

from __future__ import annotations

import pytest

from gamgin_stt.segmenter import Event, SpeechSegmenter, VadConfig
from gamgin_stt.text import cer, collapse_repeats, join_parts, to_simplified, wer


def test_simplified_and_punctuation_kept() -> None:
    assert to_simplified("劍劍，把客廳的燈打開。") == "剑剑，把客厅的灯打开。"
    assert to_simplified("Turn on the light.") == "Turn on the light."


def test_collapse_only_whole_loops() -> None:
    a = [5, 6, 7, 8]
    assert collapse_repeats(a * 3 + a[:2]) == a
    assert collapse_repeats([1, 2, 3, 3, 4]) == [1, 2, 3, 3, 4]  # a repeated word stays
    assert collapse_repeats([]) == []
    assert collapse_repeats([9, 8, 7, 7, 7, 7, 7]) == [9, 8, 7]  # "明天 天 天 天 天"
    assert collapse_repeats([9, 8, 7, 7, 7]) == [9, 8, 7, 7, 7]  # too short to call a loop
    assert collapse_repeats([1, 2, 3, 4, 5, 4, 5, 4, 5, 4]) == [1, 2, 3, 4, 5]


def test_join_parts() -> None:
    assert join_parts(["turn on", "the light"]) == "turn on the light"
    assert join_parts(["把客厅的灯", "打开"]) == "把客厅的灯打开"
    assert join_parts(["", " hi "]) == "hi"


def test_error_rates() -> None:
    assert wer("Turn on the light.", "turn on the light") == 0.0
    assert wer("turn on the light", "turn the lights") == pytest.approx(0.5)
    assert cer("把客厅的灯打开", "把客廳的燈打開！") == 0.0
    assert cer("把灯打开", "把灯关") == pytest.approx(0.5)


def run(seg: SpeechSegmenter, probs: list[float]) -> list[tuple[int, Event]]:
    return [(i, ev) for i, p in enumerate(probs) if (ev := seg.push(p)) is not None]


def test_segmenter_start_pause_resume_end() -> None:
    cfg = VadConfig(min_speech_ms=96, post_roll_ms=160, hang_over_ms=480)  # 3, 5, 15 frames
    seg = SpeechSegmenter(cfg)
    probs = [0.1] * 10 + [0.9] * 2 + [0.1] + [0.9] * 20 + [0.1] * 6 + [0.9] * 10 + [0.1] * 20
    evs = run(seg, probs)
    assert evs[0] == (15, Event.START)  # the 2-frame blip did not count
    assert seg.start_frame == 13
    assert [e for _, e in evs] == [Event.START, Event.PAUSE, Event.RESUME, Event.PAUSE, Event.END]
    end_at = evs[-1][0]
    assert seg.last_voiced == 48 and end_at == 48 + 15
    assert not seg.in_speech


def test_segmenter_hysteresis_keeps_weak_frames() -> None:
    seg = SpeechSegmenter(VadConfig(threshold=0.5, neg_threshold=0.35, hang_over_ms=320))
    evs = run(seg, [0.9] * 5 + [0.4] * 30 + [0.1] * 12)
    assert [e for _, e in evs] == [Event.START, Event.PAUSE, Event.END]
    assert seg.last_voiced == 34  # 0.4 is above neg_threshold: still speech


def test_segmenter_cut_at_quietest_frame() -> None:
    seg = SpeechSegmenter(VadConfig(max_utterance_s=1.0, hang_over_ms=480))
    probs = [0.9] * 20 + [0.52] + [0.9] * 20
    evs = run(seg, probs)
    cut_at = next(i for i, e in evs if e is Event.CUT)
    assert cut_at == 30  # 31 frames ~ 1 s
    assert seg.cut_point() == 21  # just after the 0.52 frame


@pytest.mark.parametrize("bad", [dict(threshold=1.5), dict(neg_threshold=0.7),
                                 dict(post_roll_ms=900), dict(max_utterance_s=40)])
def test_vad_config_rejects_bad_values(bad: dict) -> None:
    with pytest.raises(ValueError):
        SpeechSegmenter(VadConfig(**bad))


def test_the_name_alone_is_recognized_in_the_ways_whisper_writes_it():
    from gamgin_stt.text import is_address_only

    for said in ("金坚。", "紧紧", "请见", "金剑!", "Jin Jian", "jinjian"):
        assert is_address_only(said, ("金坚",)), said
    for said in ("金坚你好", "今天", "你好", "几点", "Jinjian, hello", ""):
        assert not is_address_only(said, ("金坚",)), said
