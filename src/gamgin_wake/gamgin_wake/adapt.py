"""The trained detector, adapted to its owner: which model, and what threshold. No ROS.

The owner's enrolled takes (``gamgin wake enroll``) are scored by the trained model as a
live stream would score them. If the model already hears every take well above its
threshold nothing changes; otherwise the threshold comes down to just under the weakest
take — never below the model's ``floor``, the lowest threshold at which the training
recipe's held-back clips still gave <= 0.5 false accepts per hour. So adaptation can only
make the owner easier to hear, and cannot open the door to other speech beyond that
bound. The result sits beside the takes (``adapted.json``) and names the model it was
made for: a retrained model ignores it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from gamgin_common.paths import file_sha256
from gamgin_wake.classifier import WakeClassifier
from gamgin_wake.embedding import RATE, SpeechEmbedding
from gamgin_wake.templates import keyword_dir

PACKAGED = {"金坚": Path(__file__).resolve().parent / "models" / "jinjian.npz"}
MARGIN = 0.8  # the threshold goes to this fraction of the weakest take's score
COMFORT = 1.2  # takes scoring this far above the threshold need no adaptation


def model_path(keyword: str, param: str = "") -> Path:
    """The `model` parameter: "" = the packaged model of the keyword; a bare name is
    looked up under models/; anything else is a path."""
    if not param:
        if keyword not in PACKAGED:
            raise FileNotFoundError(
                f"no trained model for wake word {keyword!r} (only {', '.join(PACKAGED)} "
                f"ships); train one (gamgin wake train) or use backend: fewshot")
        return PACKAGED[keyword]
    p = Path(param)
    if not p.is_absolute() and len(p.parts) == 1:
        from gamgin_common.paths import resolve_model

        p = Path(resolve_model(param))
    return p


def sha_of(path: Path) -> str:
    return file_sha256(path)[:16]


def stream_scores(model: WakeClassifier, emb: SpeechEmbedding, take: np.ndarray) -> float:
    """Best score the model gives a take said in a quiet room, with the take's end at
    every phase of the 80 ms frame grid a live stream could meet."""
    from gamgin_wake.embedding import HOP_SAMPLES

    best = 0.0
    for shift in range(0, HOP_SAMPLES, HOP_SAMPLES // 4):
        x = np.concatenate([np.zeros(int(1.2 * RATE) + shift, np.float32), take,
                            np.zeros(int(0.6 * RATE), np.float32)])
        f = emb.raw(x)
        n = model.frames
        if len(f) < n:
            continue
        wins = np.lib.stride_tricks.sliding_window_view(f, (n, 96))[:, 0]
        best = max(best, float(model.score(wins).max()))
    return best


def adapt(keyword: str, takes: list[np.ndarray], model_file: Path, emb: SpeechEmbedding,
          root: Path | None = None) -> dict:
    model = WakeClassifier.load(model_file)
    floor = float(model.meta.get("floor", model.threshold))
    scores = [round(stream_scores(model, emb, t), 3) for t in takes]
    weakest = min(scores)
    if weakest >= COMFORT * model.threshold:
        threshold = model.threshold
    else:
        threshold = max(floor, min(model.threshold, MARGIN * weakest))
    result = {"model": model_file.name, "model_sha": sha_of(model_file),
              "threshold": round(float(threshold), 6), "model_threshold": model.threshold,
              "floor": floor, "take_scores": scores,
              "unheard_takes": [i for i, s in enumerate(scores) if s < threshold]}
    folder = keyword_dir(keyword, root)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "adapted.json.tmp"
    tmp.write_text(json.dumps(result, ensure_ascii=False, indent=2))
    tmp.replace(folder / "adapted.json")
    return result


def load_adaptation(keyword: str, model: WakeClassifier | None = None,
                    model_file: Path | None = None, root: Path | None = None) -> dict | None:
    """The owner's threshold for this model, or None (no enrollment, or made for another
    model)."""
    p = keyword_dir(keyword, root) / "adapted.json"
    if not p.is_file():
        return None
    try:
        data = json.loads(p.read_text())
        threshold = float(data["threshold"])
    except (ValueError, KeyError, OSError):
        return None
    if model_file is not None and data.get("model_sha") != sha_of(model_file):
        return None
    if model is not None and not (float(model.meta.get("floor", model.threshold)) - 1e-6
                                  <= threshold <= model.threshold + 1e-6):
        return None  # made for another model: its bounds do not hold here
    return data
