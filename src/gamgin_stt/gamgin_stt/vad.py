"""Silero VAD run through onnxruntime from the packaged ONNX file (no torch at run time).

The model is recurrent: it keeps a state tensor between calls and, since v5, expects the
last 64 samples of the previous frame prepended to each 512-sample (32 ms) frame. This
mirrors silero_vad's own ``OnnxWrapper`` without importing it (that import needs torch).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000
FRAME = 512  # samples per VAD frame at 16 kHz (32 ms): the size the model was trained on
CONTEXT = 64


class SileroVad:
    """Speech probability of consecutive 512-sample frames of one 16 kHz stream."""

    def __init__(self, model_path: str | Path, threads: int = 1) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        # One thread: a frame takes ~0.1 ms, and Whisper needs the cores more.
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            str(model_path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)
        self.reset()

    def reset(self) -> None:
        """Forget the stream (a new listen window starts from silence)."""
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros((1, CONTEXT), dtype=np.float32)

    def __call__(self, frame: np.ndarray) -> float:
        if frame.shape != (FRAME,):
            raise ValueError(f"VAD frame must be {FRAME} samples at 16 kHz, got {frame.shape}")
        x = np.concatenate([self._context, frame.astype(np.float32, copy=False)[None, :]], axis=1)
        out, self._state = self._session.run(
            None, {"input": x, "state": self._state, "sr": self._sr}
        )
        self._context = x[:, -CONTEXT:]
        return float(out[0, 0])
