"""MAE's sparse encoder and decoder: equality with a dense run on the visible tokens,
mask handling, the builder's errors."""

import pytest
import torch

from slowmask.config import get_cfg
from slowmask.masking import RandomMaskGenerator, TubeMaskGenerator
from slowmask.methods import build_model
from slowmask.models import MAEEncoder
from slowmask.models.mae import visible_indices
from numerics import assert_close_at_scale

# A tiny video ViT: 4x32x32 clips, 2x8x8 patches -> 2x4x4 tokens; 2-block decoder of width 64.
TINY_MAE = [
    "DATA.NUM_FRAMES", "4",
    "DATA.TRAIN_CROP_SIZE", "32",
    "MVIT.PATCH_KERNEL", "[2, 8, 8]",
    "MVIT.PATCH_STRIDE", "[2, 8, 8]",
    "MVIT.PATCH_PADDING", "[0, 0, 0]",
    "MVIT.EMBED_DIM", "32",
    "MVIT.NUM_HEADS", "2",
    "MVIT.DEPTH", "2",
    "MVIT.SEP_POS_EMBED", "True",
    "MVIT.DROPPATH_RATE", "0.0",
    "MASK.ENABLE", "True",
    "MASK.MAE_ON", "True",
    "MASK.PRETRAIN_DEPTH", "[1]",
    "MASK.HEAD_TYPE", "separate_xformer",
    "MASK.DECODER_DEPTH", "2",
    "MASK.DECODER_EMBED_DIM", "64",
    "MODEL.MODEL_NAME", "MAE",
    "MODEL.LOSS_FUNC", "mse",
    "AUG.MASK_RATIO", "0.75",
    "AUG.MASK_WINDOW_SIZE", "[2, 4, 4]",
]


def _cfg(*overrides):
    cfg = get_cfg()
    cfg.merge_from_list(TINY_MAE + list(overrides))
    return cfg


def _masks(generator, batch):
    return torch.stack([generator(torch.Generator().manual_seed(i)) for i in range(batch)])


@pytest.mark.parametrize("cls_embed", ["True", "False"])
def test_sparse_encoder_equals_dense_run_on_visible_tokens(cls_embed):
    torch.manual_seed(0)
    model = build_model(_cfg("MVIT.CLS_EMBED_ON", cls_embed)).eval()
    encoder: MAEEncoder = model.encoder
    x = torch.randn(3, 3, 4, 32, 32)
    mask = _masks(RandomMaskGenerator((2, 4, 4), 0.75), 3).flatten(1)
    tokens, grid = encoder.patch_embed(x)
    sparse, keep = encoder.encode_visible(tokens, grid, mask)
    full = encoder.add_cls_and_pos(tokens, grid)  # the dense sequence, every token
    p = encoder.num_prefix
    for b in range(3):
        visible = (~mask[b]).nonzero()[:, 0]
        assert torch.equal(keep[b], visible)
        rows = torch.cat([torch.arange(p), p + visible])
        dense, _, _ = encoder.forward_blocks(full[b : b + 1, rows], grid)
        assert_close_at_scale(sparse[b : b + 1], encoder.norm(dense))
    assert sparse.shape == (3, p + 8, 32)


@pytest.mark.parametrize("cls_embed", ["True", "False"])
def test_forward_features_is_the_sparse_encoder_with_nothing_masked(cls_embed):
    torch.manual_seed(0)
    encoder: MAEEncoder = build_model(_cfg("MVIT.CLS_EMBED_ON", cls_embed)).eval().encoder
    x = torch.randn(2, 3, 4, 32, 32)
    tokens, grid = encoder.patch_embed(x)
    with torch.no_grad():
        latent, keep = encoder.encode_visible(tokens, grid, torch.zeros(2, 2 * 4 * 4, dtype=torch.bool))
        features = encoder.forward_features(x)
    assert features.shape == (2, 32, 32) and keep.tolist() == [list(range(32))] * 2
    assert_close_at_scale(features, latent[:, encoder.num_prefix :])


def test_decoder_input_has_visible_latents_in_order_and_mask_tokens_elsewhere():
    model = build_model(_cfg()).eval()
    encoder = model.encoder
    x = torch.randn(2, 3, 4, 32, 32)
    mask = _masks(TubeMaskGenerator((2, 4, 4), 0.5), 2)
    (decoder_input,), (grid,) = encoder(x, mask)
    assert grid == (2, 4, 4) and decoder_input.shape == (2, 1 + 32, 64)
    without_pos = decoder_input - encoder._decoder_pos_embed(grid)
    masked = mask.flatten(1)
    assert torch.allclose(without_pos[:, 1:][masked], encoder.mask_token[0, 0].expand(int(masked.sum()), -1))
    tokens, _ = encoder.patch_embed(x)
    latent, _ = encoder.encode_visible(tokens, grid, masked)
    assert_close_at_scale(without_pos[:, 1:][~masked], encoder.decoder_embed(latent[:, 1:]).flatten(0, 1))


def test_mae_forward_backward_on_masked_tokens_only():
    model = build_model(_cfg())
    x = torch.randn(2, 3, 4, 32, 32)
    mask = _masks(RandomMaskGenerator((2, 4, 4), 0.75), 2)
    out = model(x, mask)
    assert out["pred"].shape == out["target"].shape == (2 * 24, 8 * 8 * 3)
    out["loss"].backward()
    assert model.encoder.blocks[0].attn.qkv.weight.grad.abs().sum() > 0


def test_uneven_mask_counts_keep_the_smallest_count():
    # Multi-block masks hide different counts: each clip encodes the batch's smallest
    # visible count, its first visible tokens.
    mask = torch.zeros(2, 8, dtype=torch.bool)
    mask[0, :4], mask[1, :5] = True, True
    assert visible_indices(mask).tolist() == [[4, 5, 6], [5, 6, 7]]


def test_mask_hiding_every_token():
    model = build_model(_cfg())
    with pytest.raises(ValueError, match="the mask hides every token"):
        model(torch.randn(1, 3, 4, 32, 32), torch.ones(1, 2, 4, 4, dtype=torch.bool))


def test_maskmvit_with_mae_on_builds_mae():
    model = build_model(_cfg("MODEL.MODEL_NAME", "MaskMViT"))
    assert isinstance(model.encoder, MAEEncoder)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["MVIT.POOL_Q_STRIDE", "[[1, 1, 2, 2]]"], r"needs a ViT: no attention pooling \(blocks \[1\] pool"),
        (["MVIT.REL_POS_SPATIAL", "True"], "no relative positions"),
        (["MASK.HEAD_TYPE", "separate"], 'MASK.HEAD_TYPE must be "separate_xformer"'),
        (["MASK.PER_FRAME_MASKING", "True"], "MASK.PER_FRAME_MASKING is not supported"),
        (["MASK.DECODER_EMBED_DIM", "48"], "DECODER_EMBED_DIM a multiple of 64"),
    ],
)
def test_builder_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        build_model(_cfg(*overrides))
