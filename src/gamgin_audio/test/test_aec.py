"""The echo canceller on its own: a robot voice (espeak) through a delayed, reverberant
echo path into the microphone, with and without the user talking over it."""

from __future__ import annotations

import numpy as np
import pytest

from gamgin_audio.aec import DeviceClock, EchoCanceller
from gamgin_common import audio, testing

R = 16000
B = 320
T0 = 1_700_000_000 * 10**9


@pytest.fixture(scope="module")
def voices(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("aec")
    robot = testing.espeak_wav(" ".join(["This is a long story about a robot dog who loves "
                                         "to talk."] * 3), tmp / "robot.wav")
    user = testing.espeak_wav("金坚，现在几点了", tmp / "user.wav", voice="cmn-latn-pinyin")
    return (audio.resample(*testing.read_wav(robot), R),
            audio.resample(*testing.read_wav(user), R))


def room(far: np.ndarray, delay_s: float) -> np.ndarray:
    """The speaker heard by the microphone: delayed, quieter, with two reflections."""
    d = int(delay_s * R)
    echo = np.zeros(len(far) + d + 2000, np.float32)
    echo[d:d + len(far)] += 0.6 * far
    echo[d + 480:d + 480 + len(far)] += 0.2 * far
    echo[d + 1500:d + 1500 + len(far)] -= 0.08 * far
    return echo


def run(ec: EchoCanceller, mic: np.ndarray, ref: np.ndarray, jitter_s: float = 0.003,
        seed: int = 0, t0: int = T0) -> np.ndarray:
    """Real-time order: each 20 ms the speaker hands a block to the device (stamped from
    one anchor, as the speaker node does) and the microphone delivers one (stamped from
    its callback, jittery). The first `ahead` samples of `ref` are never played."""
    rng = np.random.default_rng(seed)
    out = np.zeros_like(mic)
    ahead = 2 * B  # a block reaches the speaker a device latency after it is handed over
    for i in range(0, len(mic) - B + 1, B):
        if i + ahead < len(ref):
            ec.add_reference(ref[i + ahead:i + ahead + B], t0 + (i + ahead) * 10**9 // R)
        stamp = t0 + i * 10**9 // R + int(rng.normal(0, jitter_s) * 1e9)
        out[i:i + B] = ec.process(mic[i:i + B], stamp)
    return out


def db(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * np.log10(np.mean(a.astype(np.float64) ** 2) /
                         max(np.mean(b.astype(np.float64) ** 2), 1e-20))


@pytest.mark.parametrize("delay_s", [0.005, 0.08, 0.35])
def test_the_robots_voice_is_cancelled_and_its_delay_found(voices, delay_s):
    far, _ = voices
    echo = room(far, delay_s)
    ec = EchoCanceller()
    assert not ec.converged
    out = run(ec, echo, far)
    assert ec.delay_ms is not None and abs(ec.delay_ms - 1000 * delay_s) < 8, ec.delay_ms
    assert ec.converged
    late = slice(len(echo) - 4 * R, len(echo) - 2000)  # after convergence, while it talks
    assert db(echo[late], out[late]) > 25, db(echo[late], out[late])


def test_the_user_talking_over_the_robot_comes_through(voices):
    far, near = voices
    echo = room(far, 0.06)
    ec = EchoCanceller()
    run(ec, echo, far)  # the robot has talked before: the filter knows the room
    start = 3 * R
    mic = echo.copy()
    mic[start:start + len(near)] += near
    # the next answer, on the same clocks (the mic's stream runs on)
    out = run(ec, mic, far, seed=1, t0=T0 + (len(echo) - len(echo) % B) * 10**9 // R)
    user = slice(start, start + len(near))
    # what is left of the robot under the user's voice is > 15 dB below the user, where
    # it was about as loud as the user before (the offline wake word needs ~10 dB)
    before, after = db(near, mic[user] - near), db(near, out[user] - near)
    assert before < 5 and after > 15, (before, after)


def test_without_the_robot_speaking_the_microphone_is_untouched(voices):
    _, near = voices
    ec = EchoCanceller()
    mic = np.concatenate([near, np.zeros(R, np.float32)])
    out = run(ec, mic, np.zeros(0, np.float32))
    assert np.array_equal(out, mic[:len(out)])
    assert ec.delay_ms is None


def test_wrong_block_sizes_and_tails_are_refused():
    with pytest.raises(ValueError, match="320 samples"):
        EchoCanceller().process(np.zeros(100, np.float32), T0)
    with pytest.raises(ValueError, match="tail"):
        EchoCanceller(tail_ms=5)
    with pytest.raises(ValueError, match="max_delay_ms"):
        EchoCanceller(max_delay_ms=-1)


def test_the_device_clock_is_steady_though_callbacks_are_late():
    rng = np.random.default_rng(3)
    clock, rate, block = DeviceClock(24000), 24000, 480
    off_ms = []
    for n in range(3000):  # a minute of 20 ms callbacks, 0-8 ms late at random ...
        late = rng.uniform(0, 8e6)
        if n % 500 == 250:  # ... and now and then one 120 ms late (a busy CPU)
            late = 120e6
        frames = n * block
        clock.update(frames, T0 + frames * 10**9 // rate + int(late))
        off_ms.append((clock.time_of(frames) - (T0 + frames * 10**9 // rate)) / 1e6)
    settled = np.array(off_ms[200:])
    assert np.ptp(settled) < 1.5 and 0.0 <= settled.mean() < 2.0, (np.ptp(settled),
                                                                  settled.mean())
    # the stream stalls for half a minute: after a moment the clock follows it
    for k in range(30):
        frames = (3000 + k) * block
        clock.update(frames, T0 + 90 * 10**9 + k * 20 * 10**6)
    assert abs(clock.time_of(3029 * block) - (T0 + 90 * 10**9 + 29 * 20 * 10**6)) < 2e6
