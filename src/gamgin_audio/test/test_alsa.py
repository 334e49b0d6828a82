"""libasound's xrun lines counted instead of printed, on a real PortAudio stream into a
PulseAudio null sink; the latency parameter."""

import os
import subprocess
import sys
import textwrap

import pytest

from gamgin_audio import alsa, devices
from gamgin_common import testing

# A stream whose callback sleeps past its 80 ms buffer every 5th block: underruns for sure.
# Run in a child process: the handler is process-wide, and libasound writes to fd 2.
STALLING_STREAM = textwrap.dedent("""
    import sys, time
    import sounddevice as sd
    from gamgin_audio import alsa

    n = {"xruns": 0, "flags": 0, "blocks": 0, "other": []}
    alsa.install(lambda: n.__setitem__("xruns", n["xruns"] + 1), n["other"].append)

    def cb(out, frames, t, status):
        n["flags"] += bool(status.output_underflow)
        n["blocks"] += 1
        out[:] = 0
        if n["blocks"] % 5 == 0:
            time.sleep(0.15)

    with sd.OutputStream(samplerate=24000, channels=1, dtype="float32", blocksize=480,
                         device="pulse", callback=cb, latency=0.08):
        time.sleep(3.0)
    print(n["xruns"], n["flags"], len(n["other"]))
""")


def test_xrun_lines_are_counted_not_printed(pulse):
    with testing.null_sink("gamgin_test_alsa") as sink:
        out = subprocess.run([sys.executable, "-c", STALLING_STREAM], capture_output=True,
                             text=True, timeout=60, env=dict(os.environ, PULSE_SINK=sink))
    assert out.returncode == 0, out.stderr
    xruns, flags, other = map(int, out.stdout.split())
    assert flags >= 1, out  # PortAudio saw the stalls (the pulse plugin reports some)...
    assert xruns >= 1 and other == 0, out  # ...libasound's lines came to the handler...
    assert "underrun occurred" not in out.stderr, out.stderr  # ...and not to stderr


def test_a_log_line_at_the_first_of_each_decade():
    assert [n for n in range(1, 2001) if alsa.first_of_a_decade(n)] == [1, 10, 100, 1000]
    assert not alsa.first_of_a_decade(0)


def test_latency_parameter():
    assert devices.latency("0.08") == devices.latency(0.08) == 0.08
    assert devices.latency("low") == "low" and devices.latency(" high") == "high"
    for bad in ("fast", "0", -1, 5, ""):
        with pytest.raises(ValueError, match="latency"):
            devices.latency(bad)
