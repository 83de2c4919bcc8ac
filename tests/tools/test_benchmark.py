"""tools/benchmark.py at toy sizes: every part prints its rows beside a baseline and
writes them as JSON; every figure of a row follows from its two timings."""

import json
import os

import pytest
import torch

from slowmask.benchmarks.loader import torchcodec_loads
from tool_scripts import DEMO_CFG, load_tool


def check_figures(r: dict) -> None:
    """value, baseline value, ratio and met as the row's timings give them."""
    seconds, baseline_seconds = r["timing"]["median_s"], r["baseline_timing"]["median_s"]
    to_value = (lambda s: 1.0 / s) if r["unit"] == "clips/s" else (lambda s: 1000.0 * s)
    assert r["value"] == pytest.approx(to_value(seconds), rel=1e-12)
    assert r["baseline_value"] == pytest.approx(to_value(baseline_seconds), rel=1e-12)
    speedup = baseline_seconds / seconds
    assert r["ratio"] == pytest.approx(speedup if r["ratio_kind"] == "speedup" else 1.0 / speedup, rel=1e-12)
    if r["target"].startswith(">= "):
        assert r["met"] == (speedup >= float(r["target"][3:-1]))
    elif r["target"].startswith("< "):
        assert r["met"] == (r["ratio"] < float(r["target"][2:-1]))
    else:
        assert r["met"] is None
    for timing in (r["timing"], r["baseline_timing"]):
        assert len(timing["seconds"]) == 1 and timing["median_s"] == timing["seconds"][0]


def test_all_parts_at_toy_sizes(tmp_path, capsys):
    out = tmp_path / "bench.json"
    load_tool("benchmark").main([
        "--cfg", DEMO_CFG, "--json", str(out), "--video-dir", str(tmp_path / "videos"),
        "--repeats", "1", "--loader-items", "1", "--video-size", "32", "64", "--long-seconds", "3",
        "--hog", "2", "32", "--step-clip", "1", "8", "64",
    ])
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert set(result) == {"machine", "config", "opts", "rows"} and result["config"] == DEMO_CFG
    assert result["machine"]["torch"] == torch.__version__ and result["machine"]["cpus"] == os.cpu_count()
    rows = result["rows"]
    if torchcodec_loads():  # its row, after the decoding-only ceiling
        torchcodec = rows.pop(4)
        assert "torchcodec" in torchcodec["what"] and "ceiling" in torchcodec["baseline"]
        check_figures(torchcodec)
    assert [r["part"] for r in rows] == ["loader"] * 5 + ["hog", "step", "step"]
    table = [line for line in printed.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + len(rows) + (1 if torchcodec_loads() else 0)  # the header and a line per row
    for r in rows:
        check_figures(r)
        assert r["what"] in printed and r["baseline"] in printed
    assert [r["target"] for r in rows] == [">= 2.5x", "", "< 2x", "", "", ">= 3x", ">= 1.2x", ""]
    assert "decoding only" in rows[3]["what"] and "decord" in rows[4]["what"]
    assert rows[5]["max_abs_diff"] <= 1e-5 and "2x3x32x32" in rows[5]["what"]
    assert "MaskMViT" in rows[6]["what"] and "batch 1, 8x64x64" in rows[6]["what"]
    share = rows[7]["baseline_timing"]["median_s"] / rows[6]["baseline_timing"]["median_s"]
    assert rows[7]["core_share_of_step"] == pytest.approx(share, rel=1e-12)
    assert "attention cores alone (4," in rows[7]["what"]  # one per block of the demo's 4
