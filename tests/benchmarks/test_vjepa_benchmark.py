"""The V-JEPA row of the benchmark: its step is V-JEPA 2's recipe with a ViT-B encoder (as
MaskFeat's ViT-B), it updates the EMA target, and the row reports both steps' medians."""

import pytest
import torch

from slowmask.benchmarks import vjepa
from slowmask.config import load_config

SHALLOW = ["MVIT.DEPTH", "1", "MASK.PRETRAIN_DEPTH", "[0]", "JEPA.PRED_DEPTH", "1"]


def test_the_compared_encoders_are_both_vit_b():
    jepa = vjepa.vjepa_cfg(frames=16, size=224)
    maskfeat = load_config(vjepa.MASKFEAT_VIT_B)
    for cfg in (jepa, maskfeat):
        assert (cfg.MVIT.EMBED_DIM, cfg.MVIT.DEPTH, cfg.MVIT.NUM_HEADS, cfg.MVIT.PATCH_STRIDE) == (768, 12, 12, [2, 16, 16])
    assert (jepa.JEPA.PRED_DEPTH, jepa.JEPA.PRED_EMBED_DIM, jepa.DATA.NUM_FRAMES, jepa.DATA.TRAIN_CROP_SIZE) == (12, 384, 16, 224)


def test_the_vjepa_step_moves_its_target_by_the_momentum_rule():
    model, step = vjepa.vjepa_step(vjepa.vjepa_cfg(frames=2, size=64, opts=SHALLOW), batch=1)
    before = model.target.encoder.blocks[0].attn.qkv.weight.detach().clone()
    step()
    after = model.target.encoder.blocks[0].attn.qkv.weight
    expected = 0.99925 * before + 0.00075 * model.encoder.blocks[0].attn.qkv.weight.detach()
    assert torch.allclose(after, expected, atol=1e-6 * float(expected.abs().max()), rtol=0)
    assert not torch.equal(after, before)


def test_the_row_sets_vjepa_beside_maskfeat():
    rows = vjepa.vjepa_rows(frames=2, size=64, batch=1, warmup=0, repeats=1, opts=SHALLOW)
    assert len(rows) == 1
    row = rows[0]
    assert row["part"] == "vjepa" and row["baseline"] == "MaskFeat ViT-B train step (HOG), same clips"
    assert row["ratio"] == pytest.approx(row["baseline_value"] / row["value"], rel=1e-9)
    assert "batch 1, 2x64x64" in row["what"]
