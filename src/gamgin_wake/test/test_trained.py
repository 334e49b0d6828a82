"""The trained detector's parts, without ROS: frames, classifier, backend, adaptation,
training recipe and the held-out set's separation."""

import json

import numpy as np
import pytest
import yaml

from gamgin_common.paths import resolve_model
from gamgin_wake import adapt, bench, synth, train
from gamgin_wake.backends.trained import TrainedBackend
from gamgin_wake.classifier import WakeClassifier
from gamgin_wake.classifier import train as fit
from gamgin_wake.embedding import HOP_SAMPLES, MIN_SAMPLES, RATE, FrameStream, SpeechEmbedding


@pytest.fixture(scope="module")
def emb():
    return SpeechEmbedding(resolve_model("speech-embedding.onnx"))


@pytest.fixture(scope="module")
def model():
    return WakeClassifier.load(adapt.model_path("金坚"))


def heldout_voice(text: str, k: int) -> np.ndarray:
    v = train.HELDOUT_VARIANTS[k % len(train.HELDOUT_VARIANTS)]
    return synth.espeak(text, f"{synth.MANDARIN}+{v}", 140 + 10 * (k % 4), 40 + 5 * (k % 5))


def test_streamed_frames_are_the_whole_clips_frames_whatever_the_chunking(emb):
    x = synth.pad(synth.Speaker("", 150, 50).say("金坚，把客厅的灯打开"), 1.0, 1.0)
    whole = emb(x)
    rng = np.random.default_rng(3)
    fs = FrameStream(emb, keep_frames=10_000)
    i = 0
    while i < len(x):
        n = int(rng.integers(50, 4000))
        fs.push(x[i: i + n], min_new=int(rng.integers(1, 4)))
        i += n
    fs.push(np.zeros(0, np.float32))
    assert len(fs.frames) == len(whole)
    assert np.array_equal(fs.frames, whole)
    assert fs.frame_end(len(whole) - 1) <= len(x)


def test_a_restarted_stream_keeps_counting_samples(emb):
    fs = FrameStream(emb)
    fs.push(np.zeros(RATE + 123, np.float32))
    fed = fs.fed
    fs.restart()
    assert fs.fed == fed and len(fs.frames) == 0
    fs.push(np.zeros(MIN_SAMPLES + 2 * HOP_SAMPLES, np.float32))
    assert fs.next_frame * HOP_SAMPLES >= fed  # new frames lie after the gap
    assert len(fs.frames) >= 2


def test_the_classifier_learns_and_survives_a_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 2 * 96)).astype(np.float32)
    y = (x[:, 5] + x[:, 100] > 0.5).astype(np.float32)
    m = WakeClassifier.init(2, (16,), rng)
    before = np.mean((m.score(x) > 0.5) == y)
    fit(m, x, y, np.ones(len(y), np.float32), 10, rng, lr=3e-3, batch=64, log=lambda _: None)
    after = np.mean((m.score(x) > 0.5) == y)
    assert after > 0.9 and after > before
    m.threshold, m.meta = 0.7, {"seed": 1}
    m.save(tmp_path / "m.npz")
    back = WakeClassifier.load(tmp_path / "m.npz")
    assert back.threshold == 0.7 and back.meta["seed"] == 1 and back.frames == 2
    assert np.allclose(back.score(x[:50]), m.score(x[:50]), atol=5e-3)  # float16 weights


def test_missing_or_foreign_model_files_say_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="gamgin wake train"):
        WakeClassifier.load(tmp_path / "none.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a gamgin wake model"):
        WakeClassifier.load(tmp_path / "junk.npz")
    with pytest.raises(FileNotFoundError, match="backend: fewshot"):
        adapt.model_path("小白")


def test_the_packaged_model_records_its_recipe(model):
    m = model.meta
    assert m["keyword"] == "金坚" and m["seed"] == train.SEED and model.frames == train.FRAMES
    assert 0.0 < m["floor"] <= model.threshold < 1.0
    assert set(m["heldout_variants"]) == set(train.HELDOUT_VARIANTS)
    assert not set(train.HELDOUT_VARIANTS) & set(train.training_variants())


def test_the_backend_wakes_once_on_a_held_out_voice_and_reports_the_words_end(model, emb):
    word = train.trim(heldout_voice("金坚", 1))
    lead = 2 * RATE  # the window is 16 frames (1.975 s): live, the room was heard before
    x = np.concatenate([np.zeros(lead, np.float32), word, np.zeros(2 * RATE, np.float32)])
    be = TrainedBackend("金坚", model, emb)
    dets = [d for i in range(0, len(x), 320) for d in be.process(x[i: i + 320])]
    assert len(dets) == 1, be.peak
    end = lead + len(word)
    assert end <= dets[0].end_sample <= end + int(0.5 * RATE)
    assert dets[0].backend == "trained" and model.threshold <= dets[0].confidence <= 1.0


def test_silence_and_noise_never_wake(model, emb):
    from gamgin_wake import augment

    rng = np.random.default_rng(1)
    be = TrainedBackend("金坚", model, emb)
    for kind in augment.NOISE_KINDS:
        assert be.process(0.05 * augment.noise(kind, 10 * RATE, rng)) == [], kind
    assert be.process(np.zeros(5 * RATE, np.float32)) == []


def test_threshold_out_of_range_is_refused(model, emb):
    with pytest.raises(ValueError, match="threshold"):
        TrainedBackend("金坚", model, emb, threshold=1.5)


def test_adaptation_lowers_the_threshold_for_a_weak_owner_but_never_below_the_floor(
        model, emb, tmp_path):
    path = adapt.model_path("金坚")
    # a clear take: nothing to adapt
    good = [train.trim(heldout_voice("金坚", k)) for k in range(3)]
    res = adapt.adapt("金坚", good, path, emb, root=tmp_path)
    assert res["floor"] <= res["threshold"] <= res["model_threshold"]
    # takes the model barely hears (quiet, in noise): the bar comes down, to the floor at most
    rng = np.random.default_rng(2)
    from gamgin_wake import augment

    weak = [augment.mix(t, augment.noise("white", len(t), rng), 0.0) for t in good]
    res = adapt.adapt("金坚", weak, path, emb, root=tmp_path)
    assert res["threshold"] >= res["floor"]
    if min(res["take_scores"]) < res["model_threshold"]:
        assert res["threshold"] < res["model_threshold"]
    saved = adapt.load_adaptation("金坚", model, path, root=tmp_path)
    assert saved is not None and saved["threshold"] == res["threshold"]
    # made for another model: ignored
    data = json.loads((tmp_path / "wake" / "金坚" / "adapted.json").read_text())
    data["model_sha"] = "0" * 16
    (tmp_path / "wake" / "金坚" / "adapted.json").write_text(json.dumps(data))
    assert adapt.load_adaptation("金坚", model, path, root=tmp_path) is None


def test_window_labels_follow_the_words_end():
    frames = np.zeros((60, 96), np.float32)
    word = (30_000, 40_000)
    x, y = train.windows(frames, word)
    assert x.shape[1] == train.FRAMES * 96 and y.sum() >= 2
    n = len(frames) - train.FRAMES + 1
    ends = (np.arange(n) + train.FRAMES - 1) * HOP_SAMPLES + MIN_SAMPLES
    pos_ends = ends[(ends >= word[1]) & (ends <= word[1] + train.POS_AFTER * HOP_SAMPLES)]
    assert y.sum() == len(pos_ends)
    _, y_neg = train.windows(frames, None)
    assert len(y_neg) == n and y_neg.sum() == 0


def test_negatives_never_contain_the_word_in_any_tone():
    assert train.heard_as_wake("金坚") and train.heard_as_wake("我进见了他")
    assert not train.heard_as_wake("今天见") and not train.heard_as_wake("精简")
    assert not any(train.heard_as_wake(w) for w in train.NEAR_MISS)
    rng = np.random.default_rng(0)
    assert not any(train.heard_as_wake(train.random_zh(rng)) for _ in range(200))
    daily = [train.daily_near_phrase(rng) for _ in range(400)]
    assert not any(train.heard_as_wake(t) for t in daily)
    # said as often as a home says it, and mostly where the wake word would stand
    assert sum(t.startswith("今天") for t in daily) > 60


@pytest.mark.parametrize("name", ["heldout_wake.yaml", "heldout_wake_2.yaml"])
def test_both_held_out_sets_are_kept_apart_from_training(name):
    texts = yaml.safe_load(bench.texts_file(name).read_text(encoding="utf-8"))
    assert all(t.count("金坚") == 1 for t in texts["positives"])
    negatives = [t for k in ("near_miss_zh", "ordinary_zh", "english") for t in texts[k]]
    assert not any("金坚" in t or train.heard_as_wake(t) for t in negatives)
    trained_on = set(train.COMMANDS) | set(train.NEAR_MISS) | set(train.PREFIXES)
    assert not trained_on & set(negatives)
    assert len(texts["positives"]) >= 50 and len(negatives) >= 200

