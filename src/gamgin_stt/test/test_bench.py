"""The benchmark runs end to end on a small set and writes its JSON (figures are not judged)."""

from __future__ import annotations

import json

from gamgin_stt import bench


def test_bench_quick_writes_json(tmp_path, capsys) -> None:
    out = tmp_path / "bench-stt.json"
    assert bench.main(["--quick", "--setups", "(default)", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    rows = {r["set"]: r for r in data["rows"]}
    assert set(rows) == {"en", "zh"} and rows["en"]["n"] == 3
    assert rows["en"]["error_rate"] <= 0.2  # espeak English is read well
    assert rows["en"]["final_p50_ms"] is not None and rows["en"]["rtf"] > 0
    assert "WER" in capsys.readouterr().out
