"""The ViT-H MAE and ViT-g VideoMAE V2 recipes build, on the meta device (their 0.65 B and
1.03 B parameters are never materialized), the parameter counts of their architectures;
their sharding line waits, commented, for TRAIN.SHARDING."""

import os

import pytest
import torch

from slowmask.config import load_config
from slowmask.methods import build_model
from slowmask.methods.videomae_v2 import DualMaskPretrainer

from tool_scripts import REPO


def vit_block(width: int, hidden: int) -> int:
    """Parameters of a ViT block: two LayerNorms, qkv and projection with biases, the MLP."""
    return 2 * 2 * width + (3 * width * width + 3 * width) + (width * width + width) + 2 * width * hidden + hidden + width


def sparse_decoder(encoder_width: int, tokens: int, hidden: int, out: int) -> int:
    """MAE's 512-wide decoder: mask token, positions, the embedding from the encoder, 4
    blocks, norm and projection to `out` values per token."""
    return 512 + tokens * 512 + (encoder_width * 512 + 512) + 4 * vit_block(512, hidden) + 2 * 512 + (512 * out + out)


def _build(name):
    cfg = load_config(os.path.join(REPO, "configs", name))
    with torch.device("meta"):
        return cfg, build_model(cfg)


def test_vit_h_mae_is_pyslowfasts_vit_h():
    cfg, model = _build("k400_ViT_H_MAE_PT.yaml")
    width, tokens = 1280, 8 * 14 * 14
    encoder = (
        32 * vit_block(width, 4 * width)
        + (width * 3 * 2 * 16 * 16 + width)  # 2x16x16 patch embedding
        + width + 196 * width + 8 * width + width  # class token, spatial, temporal and class positions
        + 2 * width  # final norm
    )
    expected = encoder + sparse_decoder(width, tokens + 1, 4 * 512, 16 * 16 * 3)
    assert sum(p.numel() for p in model.parameters()) == expected == 646_375_936
    assert (cfg.MVIT.DEPTH, cfg.MASK.DECODER_DEPTH, cfg.AUG.MASK_RATIO, cfg.SOLVER.MAX_EPOCH) == (32, 4, 0.9, 400)


def test_vit_g_videomae_v2_is_the_giant_with_dual_masking():
    cfg, model = _build("k400_ViT_g_VideoMAEv2_PT.yaml")
    assert isinstance(model, DualMaskPretrainer)
    width, hidden, tokens = 1408, 6144, 8 * 16 * 16
    assert model.encoder.blocks[0].mlp.fc1.out_features == hidden
    encoder = 40 * vit_block(width, hidden) + (width * 3 * 2 * 14 * 14 + width) + tokens * width + 2 * width
    decoder = sparse_decoder(width, tokens, int(512 * cfg.MVIT.MLP_RATIO), 14 * 14 * 3 * 2)
    assert sum(p.numel() for p in model.parameters()) == encoder + decoder == 1_030_297_600
    # The fixed sine-cosine table (2048 x 1408) is not trained.
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 1_030_297_600 - tokens * width
    assert cfg.MODEL.ACT_CHECKPOINT and cfg.TRAIN.MIXED_PRECISION and cfg.MASK.DECODER_MASK_TYPE == "running_cell"


@pytest.mark.parametrize("name", ["k400_ViT_H_MAE_PT.yaml", "k400_ViT_g_VideoMAEv2_PT.yaml",
                                  "k400_ViT_H_VJEPA2_PT.yaml", "k400_ViT_g_VJEPA2_PT.yaml"])
def test_the_large_recipes_shard(name):
    assert load_config(os.path.join(REPO, "configs", name)).TRAIN.SHARDING == "fsdp"
