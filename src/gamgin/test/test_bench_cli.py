"""`gamgin bench NAME --out PATH`: a results file that cannot be written is refused before
the benchmark runs (some take half an hour), with the reason and exit code 2."""

import subprocess
import time

import pytest

from gamgin_common.paths import ResultsPathError, results_path


@pytest.mark.parametrize("bench", ["e2e", "stt", "tts", "wake", "kb", "transport", "soak", "aec",
                                   "audio-codec"])
def test_an_unwritable_results_file_is_refused_at_once(bench, node_env, tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    t0 = time.monotonic()
    r = subprocess.run(["gamgin", "bench", bench, "--out", str(tmp_path / "a_file" / "x.json")],
                       env=node_env, capture_output=True, text=True, timeout=120)
    took = time.monotonic() - t0
    assert r.returncode == 2, r.stdout + r.stderr
    assert "cannot write results to" in r.stderr and "Traceback" not in r.stderr
    assert took < 30, f"{bench} ran {took:.0f} s before checking --out"


def test_a_writable_results_path_is_left_as_it_was(tmp_path):
    out = results_path("x.json", tmp_path / "deep" / "er" / "x.json")
    assert out.parent.is_dir() and not out.exists()  # checked, not left as an empty file
    (tmp_path / "old.json").write_text("{}")
    assert results_path("x.json", tmp_path / "old.json").read_text() == "{}"
    with pytest.raises(ResultsPathError, match="cannot write results"):
        results_path("x.json", tmp_path / "old.json" / "x.json")
