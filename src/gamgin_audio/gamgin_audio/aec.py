"""Acoustic echo cancellation: the robot's own voice out of its microphone.

The speaker node publishes what it plays (``audio/reference``, stamped with the time it
reaches the device); the microphone node subtracts its echo before publishing
``audio/mic``, so the wake word can be heard while the robot talks (barge-in).

Pure numpy, no ROS. Three parts:

- a timeline: reference and microphone samples are placed by their stamps on one sample
  clock, contiguously while the stamps agree (callback stamps jitter by milliseconds);
- a delay estimate (GCC-PHAT between microphone and reference over the last seconds):
  driver, PulseAudio and room latencies are unknown and differ per robot;
- a partitioned-block frequency-domain NLMS filter (MDF) in two copies: the background
  adapts on every block, the foreground -- whose output is used -- takes its weights only
  when they explain the microphone better. Near-end speech (the user talking over the
  robot) drags the background off the echo path; the foreground keeps it, so the user's
  voice comes through intact. No non-linear suppressor: it would distort the very speech
  the wake word detector must hear.
"""

from __future__ import annotations

import math
import threading

import numpy as np

NS = 1_000_000_000


class DeviceClock:
    """Wall-clock time of an audio device's sample counter. Callbacks come milliseconds
    (under load, tens of ms) late, never early, and a late one is followed by quick ones
    catching up; the samples themselves keep the device's pace. So the offset between the
    wall clock and the samples counted follows earlier readings quickly and later ones
    slowly (the device's drift), and only a lasting jump (a stalled or restarted stream)
    moves it at once. Both audio nodes stamp with it: every answer the speaker plays and
    every block the microphone hears lie on steady timelines the echo canceller can align."""

    def __init__(self, rate: int, rise: float = 0.005, fall: float = 0.1,
                 jump_s: float = 0.2, jump_updates: int = 25) -> None:
        self.rate, self.rise, self.fall = rate, rise, fall
        self.jump_ns, self.jump_updates = jump_s * 1e9, jump_updates
        self.offset_ns: float | None = None
        self._far = 0  # consecutive readings a jump away

    def update(self, frames: int, now_ns: int) -> None:
        """A reading: sample number ``frames`` is at ``now_ns`` (or a little earlier)."""
        off = now_ns - frames * 1e9 / self.rate
        if self.offset_ns is None:
            self.offset_ns = off
            return
        d = off - self.offset_ns
        if abs(d) > self.jump_ns:
            self._far += 1
            if self._far >= self.jump_updates:  # it lasts: the stream really moved
                self.offset_ns, self._far = off, 0
            return
        self._far = 0
        self.offset_ns += (self.fall if d < 0 else self.rise) * d

    def time_of(self, frames: int) -> int:
        assert self.offset_ns is not None, "update() first"
        return int(self.offset_ns + frames * 1e9 / self.rate)


class _TwoPathMdf:
    def __init__(self, block: int, partitions: int, mu: float) -> None:
        self.B, self.P, self.mu = block, partitions, mu
        bins = block + 1
        self.Wb = np.zeros((partitions, bins), np.complex128)  # background (adapting)
        self.Wf = np.zeros((partitions, bins), np.complex128)  # foreground (used)
        self.pow = np.full(bins, 1e-3)
        self.d1 = self.d2 = self.v1 = self.v2 = 0.0  # smoothed gain and its variance

    def shift(self, taps: int) -> None:
        """Move both filters' impulse responses ``taps`` later (earlier if negative): the
        reference window moved, the room did not, so what was learnt stays."""
        B, P = self.B, self.P
        for w in (self.Wb, self.Wf):
            h = np.fft.irfft(w, 2 * B, axis=1)[:, :B].reshape(-1)
            moved = np.zeros_like(h)
            if taps >= 0:
                moved[taps:] = h[:len(h) - taps]
            else:
                moved[:taps] = h[-taps:]
            w[:] = np.fft.rfft(np.concatenate([moved.reshape(P, B), np.zeros((P, B))], axis=1),
                               axis=1)

    def _echo(self, w: np.ndarray, x: np.ndarray) -> np.ndarray:
        return np.fft.irfft(np.sum(w * x, axis=0), 2 * self.B)[self.B:]

    def process(self, mic: np.ndarray, history: np.ndarray, adapt: bool = True) -> np.ndarray:
        """``history``: the last (P + 1) blocks of reference, the current one last. Spectra
        are taken from it afresh each block, so reference that arrived late (after an
        earlier block was filtered with zeros in its place) counts from now on."""
        B, P = self.B, self.P
        frames = np.lib.stride_tricks.sliding_window_view(history, 2 * B)[::B][::-1][:P]
        x = np.fft.rfft(frames, axis=1)  # newest first
        yb, yf = self._echo(self.Wb, x), self._echo(self.Wf, x)
        eb, ef = mic - yb, mic - yf
        # Take the background only when its gain is significant against how much the two
        # filters differ, scaled by the error (Valin's two-path test, as in Speex): with
        # the user talking the error is large, so a chance improvement does not count.
        see, sff = float(np.dot(eb, eb)), float(np.dot(ef, ef))
        dbf = float(np.dot(yf - yb, yf - yb)) + 1e-12
        gain = sff - see
        self.d1 = 0.6 * self.d1 + 0.4 * gain
        self.v1 = 0.36 * self.v1 + 0.16 * sff * dbf
        self.d2 = 0.85 * self.d2 + 0.15 * gain
        self.v2 = 0.7225 * self.v2 + 0.0225 * sff * dbf
        if (gain * abs(gain) > sff * dbf or self.d1 * abs(self.d1) > 0.5 * self.v1
                or self.d2 * abs(self.d2) > 0.25 * self.v2):
            self.Wf[:] = self.Wb
            ef = eb
            self.d1 = self.d2 = self.v1 = self.v2 = 0.0
        elif -gain * abs(gain) > 4.0 * sff * dbf:  # the background went astray: back
            self.Wb[:] = self.Wf
            eb = ef
            self.d1 = self.d2 = self.v1 = self.v2 = 0.0
        if adapt:
            # normalized per bin by the reference power over the filter's span; the floor
            # keeps quiet bins from taking huge steps
            self.pow = np.maximum(np.sum(np.abs(x) ** 2, axis=0), 0.5 * self.pow)
            g = (self.mu / (self.pow + B * 1e-4)) * np.fft.rfft(
                np.concatenate([np.zeros(B), eb]))
            grad = np.fft.irfft(np.conj(x) * g, 2 * B, axis=1)
            grad[:, B:] = 0.0  # the gradient constraint: a linear, not circular, filter
            self.Wb += np.fft.rfft(grad, axis=1)
        return ef


class EchoCanceller:
    """Feed ``add_reference`` with what the speaker plays and ``process`` with each
    microphone block (``block`` samples, in order); ``process`` returns the microphone
    without the robot's voice. Thread-safe between the two callers."""

    def __init__(self, rate: int = 16000, block: int = 320, tail_ms: int = 160,
                 max_delay_ms: int = 600, mu: float = 1.0, history_s: float = 4.0) -> None:
        if block <= 0 or tail_ms < block * 1000 // rate:
            raise ValueError(f"aec: tail {tail_ms} ms shorter than one {block}-sample block")
        if max_delay_ms < 0:
            raise ValueError(f"aec: max_delay_ms must be >= 0, got {max_delay_ms}")
        self.rate, self.block = rate, block
        self.partitions = max(1, math.ceil(tail_ms * rate / 1000 / block))
        self.max_delay = max_delay_ms * rate // 1000
        self.max_lead = rate // 10  # the echo may seem up to 100 ms early (stamp errors)
        # the estimated delay's echo lands this far into the filter: room for its error,
        # kept small because that much reference must have arrived ahead of the microphone
        self.margin = rate // 200
        self.size = int(history_s * rate)
        self._ref = np.zeros(self.size, np.float32)  # ring buffer, indexed by sample clock
        self._mic = np.zeros(self.size, np.float32)  # raw mic, for the delay estimate
        self._ref_end: int | None = None  # sample clock just after the latest reference
        self._mic_next: int | None = None  # sample clock of the next mic block
        self._last_ref_energy_at = -(10 ** 12)
        self._lock = threading.Lock()
        self._mdf = _TwoPathMdf(block, self.partitions, mu)
        self.delay: int | None = None  # estimated echo delay in samples (None: not yet)
        self._candidate: int | None = None
        self._since_estimate = 0
        self.echo_reduction_db = 0.0
        self.late_blocks = 0  # processed before all their reference had arrived
        self.converged_db = 15.0
        self.converged_hold = 30 * rate  # samples of microphone time
        self._converged_until = -1

    # ------------------------------------------------------------------ timeline
    def _clock(self, stamp_ns: int) -> int:
        return stamp_ns * self.rate // NS

    def _place(self, buf: np.ndarray, start: int, x: np.ndarray) -> None:
        idx = np.arange(start, start + len(x)) % self.size
        buf[idx] = x

    def _slice(self, buf: np.ndarray, start: int, n: int) -> np.ndarray:
        return buf[np.arange(start, start + n) % self.size]

    def _reference(self, start: int, n: int) -> np.ndarray:
        """Reference samples [start, start + n): zeros where none was received (not yet,
        or overwritten long ago) -- never stale ring-buffer content."""
        out = np.zeros(n)
        end = self._ref_end
        if end is None:
            return out
        lo, hi = max(start, end - self.size), min(start + n, end)
        if hi > lo:
            out[lo - start:hi - start] = self._slice(self._ref, lo, hi - lo)
        return out

    def add_reference(self, samples: np.ndarray, start_ns: int) -> None:
        """Samples at ``rate`` that reach the speaker at ``start_ns`` (wall clock)."""
        x = np.asarray(samples, np.float32)
        if x.size == 0:
            return
        at = self._clock(start_ns)
        with self._lock:
            end = self._ref_end
            if end is not None and not end - self.rate < at < end + self.size:
                self._ref[:] = 0.0  # the clock jumped (or a long pause): nothing old is valid
                end = None
            if end is not None:
                # the speaker stamps from a smoothed device clock: a chunk within a
                # millisecond of the last one's end continues it (rounding), otherwise it
                # starts where its stamp says
                if abs(at - end) <= self.rate // 1000:
                    at = end
                if at > end:
                    self._place(self._ref, end, np.zeros(min(at - end, self.size), np.float32))
            self._place(self._ref, at, x[-self.size:])
            self._ref_end = at + len(x)
            if float(np.max(np.abs(x))) > 1e-4:
                self._last_ref_energy_at = at + len(x)

    def _mic_at(self, start_ns: int) -> int:
        """Where a block stamped ``start_ns`` lies on the microphone's timeline: right after
        the last one unless the stream jumped (then where its stamp says)."""
        at = self._clock(start_ns)
        if self._mic_next is not None and abs(at - self._mic_next) <= self.rate // 20:
            return self._mic_next
        return at

    def _ref_start(self, at: int) -> int:
        """The reference block filtered with the microphone block at ``at``: the echo of
        ref[t - delay] lands at tap `margin` (room for the estimate's error); the reference
        arrives ahead of playing, so a small or even negative delay (stamps are estimates)
        can still be modelled causally."""
        return at - ((self.delay or 0) - self.margin)

    def waiting_for(self, start_ns: int) -> int:
        """Samples of reference still missing to process the block captured at
        ``start_ns`` (0: complete, or the robot is not speaking)."""
        with self._lock:
            if self._ref_end is None:
                return 0
            need = self._ref_start(self._mic_at(start_ns)) + self.block
            return max(0, need - self._ref_end)

    # ------------------------------------------------------------------ microphone
    def process(self, mic: np.ndarray, start_ns: int) -> np.ndarray:
        """One microphone block captured from ``start_ns``; returns it echo-cancelled
        (unchanged while the robot has been silent for longer than the filter's span)."""
        x = np.asarray(mic, np.float32)
        if len(x) != self.block:
            raise ValueError(f"aec: blocks of {self.block} samples expected, got {len(x)}")
        with self._lock:
            at = self._mic_at(start_ns)
            if at != self._mic_next:  # first block, or the stream jumped (xrun, restart)
                self._mic[:] = 0.0
                self._converged_until = -1
            self._mic_next = at + self.block
            self._place(self._mic, at, x)
            ref_start = self._ref_start(at)
            span = self.partitions * self.block + self.max_delay
            active = self._last_ref_energy_at > at - span
            span_ref = (self.partitions + 1) * self.block
            history = self._reference(ref_start + self.block - span_ref, span_ref)
            complete = self._ref_end is not None and ref_start + self.block <= self._ref_end
            if active:
                self._since_estimate += self.block
                if self._since_estimate >= self.rate // 2:
                    self._since_estimate = 0
                    self._estimate_delay(at + self.block)
        if not active:
            return x
        # a block whose reference has not all arrived yet is filtered, not learnt from
        if not complete:
            self.late_blocks += 1
        out = self._mdf.process(x.astype(np.float64), history, adapt=complete)
        p_in, p_out = float(np.dot(x, x)), float(np.dot(out, out))
        if p_in > 1e-6:
            db = 10.0 * math.log10(p_in / max(p_out, 1e-12))
            self.echo_reduction_db = 0.95 * self.echo_reduction_db + 0.05 * db
            if self.echo_reduction_db >= self.converged_db:
                # the user talking over the robot lowers the figure for a while; only a
                # long stretch of robot speech without it means the room has changed
                with self._lock:
                    self._converged_until = at + self.converged_hold
        return np.clip(out, -1.0, 1.0).astype(np.float32)

    def _estimate_delay(self, now: int) -> None:
        """GCC-PHAT over the last ~2 s; lock held. Moves the filter's window only on a
        clear peak that repeats."""
        n = min(self.size // 2, 2 * self.rate)
        lead, late = self.max_lead, self.max_delay
        mic = self._slice(self._mic, now - n, n).astype(np.float64)
        ref = self._reference(now - n - late, n + late + lead)
        # enough of the robot's voice in the window (~1 s of speech) to correlate
        if float(np.sum(np.abs(ref) > 1e-3)) < 0.5 * n or float(np.dot(mic, mic)) < 1e-9:
            return
        size = 1 << math.ceil(math.log2(len(ref) + n))
        cross = np.fft.rfft(mic, size) * np.conj(np.fft.rfft(ref, size))
        cc = np.fft.irfft(cross / (np.abs(cross) + 1e-9), size)
        # mic[i] = ref[i + late - d], so the correlation peaks at lag d - late; the window
        # holds lags -(late + lead)..0, so its index j is d + lead
        window = np.concatenate([cc[-(late + lead):], cc[:1]])
        j = int(np.argmax(window))
        peak, d = float(window[j]), j - lead
        noise = float(np.median(np.abs(window))) + 1e-9
        if peak < 6.0 * noise:
            return
        # adopt a delay only when two estimates in a row agree (one can lock onto a
        # repeated syllable); a small drift stays inside the filter's margin
        tol = self.rate // 500  # 2 ms
        agreed = self._candidate is not None and abs(d - self._candidate) <= tol
        self._candidate = d
        if agreed and (self.delay is None or abs(d - self.delay) > self.margin // 2):
            self._mdf.shift((self.delay or 0) - d)  # same echo, new window: keep the filter
            self.delay = d

    @property
    def converged(self) -> bool:
        """The robot's voice has recently been taken down by ``converged_db``: a wake word
        heard while it speaks is the user's, not its own echo."""
        with self._lock:
            return self._mic_next is not None and self._mic_next <= self._converged_until

    @property
    def delay_ms(self) -> float | None:
        return None if self.delay is None else 1000.0 * self.delay / self.rate
