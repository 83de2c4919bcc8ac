"""The step part of the benchmark: the config at the benchmark's clip size, and the
attention cores it records, which give the model's attention outputs."""

import torch

from numerics import assert_close_at_scale
from slowmask.benchmarks.step import record_core_calls, step_cfg
from slowmask.config import load_config
from slowmask.methods import build_model
from slowmask.models.layers.attention import MultiScaleAttention
from tool_scripts import DEMO_CFG


def test_step_cfg_masks_on_the_prediction_grid_of_the_clip():
    # The demo's prediction stride: patch stride (2, 4, 4) times the query pooling (1, 2, 2) of block 1.
    cfg = step_cfg(DEMO_CFG, ["MASK.PRETRAIN_DEPTH", "[3]"], frames=8, size=112)
    assert (cfg.DATA.NUM_FRAMES, cfg.DATA.TRAIN_CROP_SIZE) == (8, 112)
    assert list(cfg.AUG.MASK_WINDOW_SIZE) == [4, 14, 14]
    assert list(step_cfg(DEMO_CFG, ["MASK.PRETRAIN_DEPTH", "[0]"], 4, 64).AUG.MASK_WINDOW_SIZE) == [2, 16, 16]


def test_recorded_attention_cores_give_the_models_attention_outputs():
    cfg = load_config(DEMO_CFG, [])
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    frames, size = cfg.DATA.NUM_FRAMES, cfg.DATA.TRAIN_CROP_SIZE
    clips = torch.randn(1, 3, frames, size, size)
    masks = torch.rand(1, *cfg.AUG.MASK_WINDOW_SIZE) < 0.5
    calls = record_core_calls(model, clips, masks)
    blocks = [m for m in model.modules() if isinstance(m, MultiScaleAttention)]
    assert len(calls) == len(blocks) == cfg.MVIT.DEPTH
    assert [module for module, _ in calls] == blocks  # one call per block, in order
    assert all("_attend_sdpa" not in vars(m) for m in blocks)  # the recording wrapper is gone
    for module, (q, k, v, q_grid, k_grid) in calls:
        plain = module._attend_plain(q, k, v, q_grid, k_grid)
        assert_close_at_scale(module._attend_sdpa(q, k, v, q_grid, k_grid), plain)
