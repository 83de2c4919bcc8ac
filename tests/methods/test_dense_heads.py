"""MaskFeat's and SimMIM's prediction heads: the linear one of their papers, or MAE's decoder
on every token of the dense encoder (MASK.HEAD_TYPE "separate_xformer")."""

import os

import pytest
import torch

from slowmask.config import load_config
from slowmask.methods import build_model
from slowmask.models import DecoderPredictionHead, SeparatePredictionHead

SIMMIM = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "demo", "ViT_tiny_image_SimMIM_PT.yaml")
DECODER = ["MASK.HEAD_TYPE", "separate_xformer", "MASK.DECODER_DEPTH", "2", "MASK.DECODER_EMBED_DIM", "128"]


def test_the_decoder_predicts_each_token_from_the_encoders_tokens_and_the_loss_reads_the_masked_ones():
    cfg = load_config(SIMMIM, DECODER + ["MODEL.LOSS_FUNC", "mse"])
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    head = model.pred_head
    assert isinstance(head, DecoderPredictionHead) and len(head.transforms[0]) == 3  # 2 blocks + norm
    assert head.projections[0].out_features == 3 * 4 * 4 and head.num_prefix == 0
    clip = torch.randn(2, 3, 1, 32, 32)
    mask = torch.zeros(2, 1, 8, 8, dtype=torch.bool)
    mask[0, 0, :4], mask[1, 0, :, 2:5] = True, True
    out = model(clip, mask)
    (features,), _ = model.encoder(clip, mask)
    assert features.shape == (2, 64, 64)  # grid tokens only: no class token reaches the decoder
    x = features
    for block in head.transforms[0][:2]:
        x, _ = block(x, (1, 8, 8))
    expected = head.projections[0](head.transforms[0][2](x))[mask.flatten(1)]
    torch.testing.assert_close(out["pred"], expected, rtol=1e-5, atol=1e-6)
    assert out["pred"].shape == (32 + 24, 48)
    torch.testing.assert_close(out["loss"], (expected - out["target"]).square().mean(), rtol=1e-5, atol=1e-7)


def test_the_linear_head_stays_the_default_and_a_bad_head_is_refused_by_name():
    assert isinstance(build_model(load_config(SIMMIM)).pred_head, SeparatePredictionHead)
    with pytest.raises(ValueError, match="MASK.HEAD_TYPE 'conv' is not supported; use one of separate, separate_xformer"):
        build_model(load_config(SIMMIM, ["MASK.HEAD_TYPE", "conv"]))
    with pytest.raises(ValueError, match='"separate_xformer" takes one MASK.PRETRAIN_DEPTH, got 2'):
        build_model(load_config(SIMMIM, DECODER + ["MASK.PRETRAIN_DEPTH", "[1, 2]"]))
