"""MaskFeat pretraining under mixed precision and activation checkpointing: the HOG
target stays float32 under autocast, and checkpointing changes no number."""

import torch

from slowmask.methods import build_model
from numerics import assert_same_gradients

B, T, H, W = 2, 8, 32, 32
MASK_GRID = (2, 2, 2)


def _inputs():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(B, 3, T, H, W, generator=generator)
    mask = torch.rand(B, *MASK_GRID, generator=generator) < 0.5
    mask[:, 0, 0, 0] = True
    return x, mask


def test_hog_targets_are_float32_and_unchanged_under_bf16_autocast(make_cfg, tiny_maskfeat):
    torch.manual_seed(0)
    model = build_model(make_cfg(tiny_maskfeat))
    x, mask = _inputs()
    plain = model(x, mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = model(x, mask)
    assert mixed["pred"].dtype == torch.bfloat16  # autocast is really on for the network
    assert mixed["target"].dtype == torch.float32 and mixed["loss"].dtype == torch.float32
    assert torch.equal(mixed["target"], plain["target"])


def test_activation_checkpointing_gives_the_same_pretraining_loss_and_gradients(make_cfg, tiny_maskfeat):
    torch.manual_seed(0)
    plain = build_model(make_cfg(tiny_maskfeat))
    checkpointed = build_model(make_cfg(tiny_maskfeat, ["MODEL.ACT_CHECKPOINT", "True"]))
    checkpointed.load_state_dict(plain.state_dict())
    assert checkpointed.encoder.act_checkpoint
    x, mask = _inputs()
    loss_plain, loss_checkpointed = plain(x, mask)["loss"], checkpointed(x, mask)["loss"]
    torch.testing.assert_close(loss_checkpointed, loss_plain, rtol=0, atol=0)
    loss_plain.backward()
    loss_checkpointed.backward()
    assert_same_gradients(checkpointed.named_parameters(), plain.named_parameters())
