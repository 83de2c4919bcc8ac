"""The MAE part of the benchmark: the dense baseline hides masked patches as the sparse
encoder does, and the reported figures are the medians of the two comparisons."""

import os

import pytest
import torch

from slowmask.benchmarks import mae
from slowmask.benchmarks.timing import Timing
from slowmask.config import load_config
from slowmask.methods import build_model
from tool_scripts import REPO

MAE_CFG = os.path.join(REPO, "configs", "demo", "ViT_tiny_MAE_PT.yaml")
# 8 frames of 64 x 64 in patches of 2 x 16 x 16: a 4 x 4 x 4 token grid.
SMALL = ["DATA.NUM_FRAMES", "8", "DATA.TRAIN_CROP_SIZE", "64", "AUG.MASK_WINDOW_SIZE", "[4, 4, 4]"]


def test_the_dense_encoder_hides_masked_patches_and_leaves_the_sparse_one_as_it_was():
    torch.manual_seed(0)
    model = build_model(load_config(MAE_CFG, SMALL)).eval()
    dense = mae.DenseMAEEncoder(model.encoder)
    torch.nn.init.normal_(dense.mask_token_encoder)
    x = torch.randn(1, 3, 8, 64, 64)
    mask = torch.zeros(1, 4, 4, 4, dtype=torch.bool)
    mask[0, 0, 0, 0] = True
    changed = x.clone()
    changed[:, :, :2, :16, :16] = torch.randn(1, 3, 2, 16, 16)  # the masked token's pixels
    with torch.no_grad():
        sparse_before = model.encoder(x, mask)[0][0]
        (out,), (grid,) = dense(x, mask)
        assert grid == (4, 4, 4) and out.shape == sparse_before.shape
        torch.testing.assert_close(dense(changed, mask)[0][0], out, atol=0, rtol=0)
        unmasked = torch.zeros_like(mask)
        assert not torch.equal(dense(changed, unmasked)[0][0], dense(x, unmasked)[0][0])
        assert not torch.equal(out, sparse_before)  # visible tokens attend to the mask token
        torch.testing.assert_close(model.encoder(x, mask)[0][0], sparse_before, atol=0, rtol=0)  # hook removed


def test_the_figures_are_the_medians_of_the_step_and_pass_comparisons(monkeypatch):
    calls = []
    # (candidate, baseline) timings of the whole steps, then of forward + backward.
    answers = iter([(Timing([0.1, 0.3, 0.2], cpu_seconds=[0.4, 0.6, 0.5]), Timing([0.9, 0.7, 0.8], cpu_seconds=[2.0])),
                    (Timing([0.05]), Timing([0.25]))])

    def fake_compare(candidate, baseline, warmup, repeats):
        candidate(), baseline()  # both models really run a step
        calls.append((warmup, repeats))
        return next(answers)

    monkeypatch.setattr(mae, "compare", fake_compare)
    result = mae.sparse_vs_dense(MAE_CFG, frames=8, size=64, batch=2, ratio=0.75, steps=3)
    assert calls == [(1, 3), (0, 3)]
    assert result == pytest.approx({
        "tokens": 64.0, "sparse_s": 0.2, "dense_s": 0.8, "sparse_cpu_s": 0.5, "dense_cpu_s": 2.0,
        "sparse_fwd_bwd_s": 0.05, "dense_fwd_bwd_s": 0.25, "speedup": 4.0, "cpu_speedup": 4.0, "fwd_bwd_speedup": 5.0,
    }, rel=1e-12)


def test_the_mae_row_compares_whole_steps(monkeypatch):
    monkeypatch.setattr(mae, "sparse_vs_dense", lambda *args, **kwargs: {"sparse_s": 0.5, "dense_s": 2.0})
    (r,) = mae.mae_rows(MAE_CFG, 8, 64, 2, 3)
    assert (r["part"], r["value"], r["baseline_value"], r["ratio"]) == ("mae", 500.0, 2000.0, 4.0)
    assert r["what"] == "MAE train step, batch 2, 8x64x64, sparse encoder (medians of 3)"
