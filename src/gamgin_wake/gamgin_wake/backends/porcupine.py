"""Picovoice Porcupine (pvporcupine): the original prototype's detector.

Needs an AccessKey (validated online by Picovoice) and, for "金坚", a custom keyword
file (.ppn) trained in the Picovoice console plus the matching Chinese model
(porcupine_params_zh.pv). Without them it raises PorcupineSetupError with the way out.
"""

from __future__ import annotations

import os

import numpy as np

from gamgin_wake.core import Detection

KEY_ENV = "PICOVOICE_ACCESS_KEY"
HOW_TO = ("get a free AccessKey at https://console.picovoice.ai/ and set the wake node's "
          f"`access_key` parameter (or the {KEY_ENV} environment variable); for 金坚 also train "
          "a Chinese keyword there and set `keyword_paths` to the .ppn and `model_path` to "
          "porcupine_params_zh.pv. Or use backend:=fewshot, which needs no key")


class PorcupineSetupError(RuntimeError):
    pass


class PorcupineBackend:
    name = "porcupine"

    def __init__(self, keyword: str, access_key: str = "", keyword_paths: list[str] | None = None,
                 model_path: str = "", sensitivities: list[float] | None = None,
                 library_path: str = "") -> None:
        import pvporcupine

        key = access_key or os.environ.get(KEY_ENV, "")
        if not key:
            raise PorcupineSetupError(f"porcupine: no Picovoice AccessKey; {HOW_TO}")
        paths = [p for p in (keyword_paths or []) if p]
        kwargs: dict = {"access_key": key}
        if paths:
            missing = [p for p in paths if not os.path.isfile(p)]
            if missing:
                raise PorcupineSetupError(f"porcupine: keyword file(s) not found: {missing}")
            kwargs["keyword_paths"] = paths
            # the keyword file's name is what a person recognizes (e.g. 金坚_zh_linux.ppn)
            self.keywords = [os.path.basename(p).split("_")[0] for p in paths]
        elif keyword in pvporcupine.KEYWORDS:
            kwargs["keywords"] = [keyword]
            self.keywords = [keyword]
        else:
            raise PorcupineSetupError(
                f"porcupine: {keyword!r} is not a built-in keyword "
                f"({', '.join(sorted(pvporcupine.KEYWORDS))}) and keyword_paths is empty; {HOW_TO}")
        if model_path:
            if not os.path.isfile(model_path):
                raise PorcupineSetupError(f"porcupine: model_path {model_path} not found")
            kwargs["model_path"] = model_path
        if library_path:
            kwargs["library_path"] = library_path
        sens = list(sensitivities or [])
        if sens:
            if len(sens) == 1:
                sens *= len(self.keywords)
            if len(sens) != len(self.keywords) or not all(0.0 <= s <= 1.0 for s in sens):
                raise PorcupineSetupError(
                    f"porcupine: sensitivities {sens} must be one value in [0, 1] per keyword")
            kwargs["sensitivities"] = sens
        try:
            self.handle = pvporcupine.create(**kwargs)
        except pvporcupine.PorcupineActivationError as exc:
            raise PorcupineSetupError(f"porcupine: AccessKey rejected ({exc}); {HOW_TO}") from exc
        except pvporcupine.PorcupineError as exc:
            # offline, an invalid key also ends here ("Initialization failed")
            raise PorcupineSetupError(
                f"porcupine: initialization failed ({type(exc).__name__}: {exc}): invalid "
                f"AccessKey, no network to validate it, or a .ppn/.pv mismatch; {HOW_TO}") from exc
        self.keyword = self.keywords[0]
        self.frame = self.handle.frame_length
        self.reset()

    def reset(self) -> None:
        self._pending = np.zeros(0, np.int16)
        self._fed = getattr(self, "_fed", 0)

    def process(self, samples: np.ndarray) -> list[Detection]:
        pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)
        self._pending = np.concatenate([self._pending, pcm])
        out = []
        while len(self._pending) >= self.frame:
            frame, self._pending = self._pending[: self.frame], self._pending[self.frame:]
            self._fed += self.frame
            idx = self.handle.process(frame)
            if idx >= 0:
                out.append(Detection(self.keywords[idx], 1.0, self._fed, self.name))
        return out

    def close(self) -> None:
        if getattr(self, "handle", None) is not None:
            self.handle.delete()
            self.handle = None
