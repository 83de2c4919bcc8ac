"""Full-size recipes build PySlowFast's networks exactly: parameter counts and names.

The recipes are the repository's configs/k400_MViT_{S,L}_MaskFeat_PT.yaml and
configs/k400_MViT_{S,L}_FT.yaml (PySlowFast's configs/masked_ssl/k400_MVITv2_{S,L}_16x4_FT.yaml).
Built on the meta device, so even
MViTv2-L takes a fraction of a second; every yaml the repository ships builds.
"""

import glob
import os

import pytest
import torch

from slowmask.config import load_config
from slowmask.methods import build_model

TEST_CONFIGS = os.path.join(os.path.dirname(__file__), "configs")
REPO_CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(TEST_CONFIGS))), "configs")
# Distillation recipes (MASK.TARGET teacher) need their teacher's checkpoint:
# tests/engine/test_teacher.py builds them.
SHIPPED = sorted(
    p for p in glob.glob(os.path.join(REPO_CONFIGS, "**", "*.yaml"), recursive=True)
    if load_config(p).MASK.TARGET != "teacher"
)


def _build_file(path: str) -> torch.nn.Module:
    cfg = load_config(path)
    with torch.device("meta"):
        return build_model(cfg)


def _build(name: str) -> torch.nn.Module:
    folder = REPO_CONFIGS if name.startswith(("k400_", "in1k_")) else TEST_CONFIGS
    return _build_file(os.path.join(folder, name + ".yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=os.path.basename)
def test_every_shipped_config_builds(path):
    assert sum(p.numel() for p in _build_file(path).parameters()) > 0


@pytest.mark.parametrize(
    "name, expected",
    [
        ("k400_MViT_S_MaskFeat_PT", 36_253_356),
        ("k400_MViT_L_MaskFeat_PT", 217_247_580),
        ("k400_MViT_S_FT", 36_475_120),
        ("k400_MViT_L_FT", 217_578_064),
        ("k400_ViT_B_MAE_PT", 100_596_736),
        ("k400_ViT_B_FT", 86_702_224),
        ("k400_ViT_L_FT", 304_506_256),
        ("in1k_ViT_B_FT", 86_567_656),
    ],
)
def test_parameter_count_matches_pyslowfast(name, expected):
    model = _build(name)
    assert sum(p.numel() for p in model.parameters()) == expected


def test_pretraining_state_dict_has_pyslowfast_names():
    state = _build("k400_MViT_S_MaskFeat_PT").state_dict()
    shapes = {
        "patch_embed.proj.weight": (96, 3, 3, 7, 7),
        "cls_token": (1, 1, 96),
        "mask_token": (1, 1, 96),
        "blocks.0.attn.qkv.weight": (288, 96),
        "blocks.0.attn.rel_pos_h": (111, 96),
        "blocks.0.attn.rel_pos_w": (111, 96),
        "blocks.0.attn.rel_pos_t": (15, 96),
        "blocks.1.attn.pool_q.weight": (96, 1, 3, 3, 3),
        "blocks.1.attn.norm_q.weight": (96,),
        "blocks.1.attn.pool_k.weight": (96, 1, 3, 3, 3),
        "blocks.0.proj.weight": (192, 96),
        "blocks.1.attn.rel_pos_h": (55, 96),
        "blocks.15.mlp.fc2.weight": (768, 3072),
        "pred_head.transforms.0.0.weight": (768,),
        "pred_head.projections.0.weight": (108, 768),
    }
    for key, shape in shapes.items():
        assert tuple(state[key].shape) == shape, key
    assert "norm.weight" not in state and "head.projection.weight" not in state
    assert not [k for k in state if k.startswith(("encoder.", "target.", "loss_fn."))]
    assert not [k for k in state if "pos_embed" in k]  # USE_ABS_POS False


def test_mae_state_dict_has_pyslowfast_names():
    state = _build("k400_ViT_B_MAE_PT").state_dict()
    shapes = {
        "patch_embed.proj.weight": (768, 3, 2, 16, 16),
        "pos_embed_spatial": (1, 196, 768),
        "pos_embed_temporal": (1, 8, 768),
        "pos_embed_class": (1, 1, 768),
        "norm.weight": (768,),
        "decoder_embed.weight": (512, 768),
        "mask_token": (1, 1, 512),
        "decoder_pos_embed": (1, 1 + 8 * 14 * 14, 512),
        "pred_head.transforms.0.0.attn.qkv.weight": (1536, 512),
        "pred_head.transforms.0.3.mlp.fc2.weight": (512, 2048),
        "pred_head.transforms.0.4.weight": (512,),
        "pred_head.projections.0.weight": (768, 512),
    }
    for key, shape in shapes.items():
        assert tuple(state[key].shape) == shape, key
    assert not [k for k in state if k.startswith(("encoder.", "target.", "loss_fn."))]


def test_classifier_state_dict_has_pyslowfast_names():
    state = _build("k400_MViT_S_FT").state_dict()
    assert tuple(state["head.projection.weight"].shape) == (400, 768)
    assert tuple(state["norm.weight"].shape) == (768,)
    assert tuple(state["blocks.14.attn.pool_q.weight"].shape) == (96, 1, 3, 3, 3)
    assert "mask_token" not in state and not [k for k in state if k.startswith("pred_head")]
