"""MaskFeat pretraining (MaskMViT): dense encoder with mask token + head + target + MSE
on the masked tokens, with PySlowFast's flat parameter names."""

import io

import pytest
import torch
import torch.nn.functional as F

from slowmask.methods import MaskedPretrainer, build_model
from slowmask.masking.grids import upsample_mask
from numerics import assert_close_at_scale, assert_same_gradients

B, T, H, W = 2, 8, 32, 32
PRED_GRID = (4, 4, 4)  # 4x8x8 tokens, block 1 pools h and w by 2
MASK_GRID = (2, 2, 2)


@pytest.fixture
def model(make_cfg, tiny_maskfeat, stand_in_target) -> MaskedPretrainer:
    torch.manual_seed(0)
    return build_model(make_cfg(tiny_maskfeat))


def _inputs(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(B, 3, T, H, W, generator=generator)
    mask = torch.rand(B, *MASK_GRID, generator=generator) < 0.5
    mask[:, 0, 0, 0] = True  # at least one masked unit per clip
    return x, mask


def _manual_selection(mask: torch.Tensor, grid) -> torch.Tensor:
    """(B, t*h*w) bool: prediction token (t, h, w) is masked when its mask unit is."""
    ft, fh, fw = (g // m for g, m in zip(grid, mask.shape[1:]))
    tt, hh, ww = torch.meshgrid(*(torch.arange(g) for g in grid), indexing="ij")
    return mask[:, tt // ft, hh // fh, ww // fw].flatten(1)


def test_forward_backward_shapes_and_masked_rows(model, stand_in_target):
    x, mask = _inputs()
    out = model(x, mask)
    selected = _manual_selection(mask, PRED_GRID)
    n_masked = int(selected.sum())
    assert out["pred"].shape == (n_masked, 27) and out["target"].shape == (n_masked, 27)
    assert out["target"].dtype == torch.float32 and not out["target"].requires_grad
    # Rows in (batch, t, h, w) order: the full-grid target, then the masked rows.
    torch.testing.assert_close(out["target"], stand_in_target(x, PRED_GRID)[selected])
    features, grids = model.encoder(x, mask)
    assert grids == [PRED_GRID] and features[0].shape == (B, 64, 32)
    torch.testing.assert_close(out["pred"], model.pred_head(features)[0][selected])
    torch.testing.assert_close(out["loss"], F.mse_loss(out["pred"], out["target"]))
    out["loss"].backward()
    assert model.encoder.mask_token.grad.abs().sum() > 0
    assert model.encoder.blocks[0].attn.rel_pos_h.grad.abs().sum() > 0
    assert model.pred_head.projections[0].weight.grad is not None


def test_mask_tokens_replace_masked_patches(model):
    x, mask = _inputs()
    none_masked, _ = model.encoder(x, torch.zeros_like(mask))
    unmasked, _ = model.encoder(x, None)
    masked, _ = model.encoder(x, mask)
    torch.testing.assert_close(none_masked[0], unmasked[0])
    assert not torch.allclose(masked[0], unmasked[0])


def test_sdpa_model_equals_plain_model(make_cfg, tiny_maskfeat, stand_in_target):
    torch.manual_seed(0)
    sdpa = build_model(make_cfg(tiny_maskfeat))
    plain = build_model(make_cfg(tiny_maskfeat))
    for block in plain.encoder.blocks:
        block.attn.use_sdpa = False
    plain.load_state_dict(sdpa.state_dict())
    x, mask = _inputs()
    out, out_plain = sdpa(x, mask), plain(x, mask)
    assert_close_at_scale(out["pred"], out_plain["pred"])
    out["loss"].backward()
    out_plain["loss"].backward()
    assert_same_gradients(sdpa.named_parameters(), plain.named_parameters())


def test_state_dict_round_trip_gives_identical_outputs(make_cfg, tiny_maskfeat, model):
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert "mask_token" in state and "blocks.0.attn.qkv.weight" in state
    assert not [k for k in state if k.startswith(("encoder.", "target."))]
    torch.manual_seed(1)
    other = build_model(make_cfg(tiny_maskfeat))
    other.load_state_dict(state)
    x, mask = _inputs()
    torch.testing.assert_close(other(x, mask)["pred"], model(x, mask)["pred"], atol=0, rtol=0)


def test_pyslowfast_hog_buffers_are_ignored_on_load(model):
    state = model.state_dict()
    before = {name: value.clone() for name, value in state.items()}
    state["hogs.0.weight_x"] = torch.zeros(1, 1, 3, 3)
    state["hogs.0.weight_y"] = torch.zeros(1, 1, 3, 3)
    result = model.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == []
    after = model.state_dict()
    assert list(after) == list(before)  # no HOG filters became part of the model
    for name, value in before.items():
        torch.testing.assert_close(after[name], value, atol=0, rtol=0)


def test_vit_maskfeat_predicts_on_the_token_grid(make_cfg, tiny_vit, tiny_maskfeat, stand_in_target):
    vit_pretrain = [
        "MODEL.MODEL_NAME", "MaskMViT", "MODEL.LOSS_FUNC", "mse",
        "MASK.PRETRAIN_DEPTH", "[1]", "AUG.MASK_WINDOW_SIZE", "[2, 2, 2]",
    ]
    model = build_model(make_cfg(tiny_vit, vit_pretrain))
    x = torch.randn(2, 3, 4, 32, 32)
    mask = torch.zeros(2, 2, 2, 2, dtype=torch.bool)
    mask[0, 1, 0, 1] = mask[1, 0, 1, 1] = True
    out = model(x, mask)
    assert out["pred"].shape == (2, 27)
    out["loss"].backward()


def test_target_with_state_is_refused(model):
    target = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="persistent=False"):
        MaskedPretrainer(model.encoder, model.pred_head, target, F.mse_loss)


def test_mask_grid_must_divide_the_grid():
    with pytest.raises(ValueError, match=r"mask grid \(2, 3, 3\).*\(4, 8, 8\)"):
        upsample_mask(torch.zeros(1, 2, 3, 3, dtype=torch.bool), (4, 8, 8))


def test_unknown_loss_is_reported(make_cfg, tiny_maskfeat, stand_in_target):
    with pytest.raises(ValueError, match="MODEL.LOSS_FUNC 'huber'.*'mse', 'multi_mse'"):
        build_model(make_cfg(tiny_maskfeat, ["MODEL.LOSS_FUNC", "huber"]))
