"""tools/benchmark.py at toy sizes: every part prints its rows beside a baseline and
writes them as JSON; the baseline HOG equals the fast one."""

import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools"))

import benchmark  # noqa: E402
import benchmark_loader  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from slowmask.utils.timing import Timing  # noqa: E402
from numerics import assert_close_at_scale  # noqa: E402

DEMO_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_MaskFeat_PT.yaml")


def test_all_parts_at_toy_sizes(tmp_path, capsys):
    out = tmp_path / "bench.json"
    benchmark.main([
        "--cfg", DEMO_CFG, "--json", str(out), "--video-dir", str(tmp_path / "videos"),
        "--repeats", "1", "--loader-items", "1", "--video-size", "32", "64", "--long-seconds", "3",
        "--hog", "2", "32", "--step-clip", "1", "8", "64",
    ])
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    rows = result["rows"]
    if benchmark_loader.torchcodec_loads():  # its row, after the decoding-only ceiling
        torchcodec = rows.pop(4)
        assert "torchcodec" in torchcodec["what"] and "ceiling" in torchcodec["baseline"]
        assert torchcodec["decoding_only_clips_per_s"] > 0
    assert [r["part"] for r in rows] == ["loader"] * 5 + ["hog", "step", "step"]
    assert result["machine"]["torch"] and "| part |" in printed
    for r in rows:
        assert r["value"] > 0 and r["baseline_value"] > 0 and r["ratio"] > 0
        assert r["what"] in printed and r["baseline"] in printed
    seek_row = rows[2]
    assert seek_row["ratio_kind"] == "cost" and seek_row["target"] == "< 2x"
    assert "decoding only" in rows[3]["what"]
    assert rows[5]["max_abs_diff"] <= 1e-5
    assert "MaskMViT" in rows[6]["what"]
    assert "attention cores" in rows[7]["what"] and 0 < rows[7]["core_share_of_step"] < 1


def test_ratio_is_a_speedup_or_a_cost():
    fast, slow = Timing([1.0]), Timing([3.0])
    speedup = benchmark.row("hog", "x", fast, "y", slow, target=2.0)
    assert speedup["ratio"] == pytest.approx(3.0) and speedup["met"] and speedup["value"] == 1000.0
    cost = benchmark.row("loader", "x", slow, "y", fast, per_clip=True, cost_limit=2.0)
    assert cost["ratio"] == pytest.approx(3.0) and cost["met"] is False
    assert cost["value"] == pytest.approx(1 / 3) and cost["unit"] == "clips/s"


def test_recorded_attention_cores_give_the_models_attention_outputs():
    from benchmark_attention import record_core_calls
    from slowmask.config import load_config
    from slowmask.models import build_model

    cfg = load_config(DEMO_CFG, [])
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    frames, size = cfg.DATA.NUM_FRAMES, cfg.DATA.TRAIN_CROP_SIZE
    clips = torch.randn(1, 3, frames, size, size)
    masks = torch.rand(1, *cfg.AUG.MASK_WINDOW_SIZE) < 0.5
    calls = record_core_calls(model, clips, masks)
    blocks = [m for m in model.modules() if type(m).__name__ == "MultiScaleAttention"]
    assert len(calls) == len(blocks) > 0
    assert all("_attend_sdpa" not in vars(m) for m in blocks)  # the recording wrapper is gone
    for module, (q, k, v, q_grid, k_grid) in calls:
        plain = module._attend_plain(q, k, v, q_grid, k_grid)
        assert_close_at_scale(module._attend_sdpa(q, k, v, q_grid, k_grid), plain)
