"""The poolings the probes and feature files read: each gives the expected tensor on a tiny
model; a pooling the model cannot give is refused naming the key to change."""

import os

import pytest
import torch
import torch.nn.functional as F

from slowmask.config import ConfigError, load_config
from slowmask.features import pooled_features, pooling_label
from slowmask.features.pooling import check_pooling_fits
from slowmask.methods import build_model

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# A ViT classifier: 3 blocks of width 64 on a 4 x 4 x 4 grid, a class token; 8 x 64 x 64 clips.
VIT = os.path.join(REPO, "configs", "demo", "ViT_tiny_MaskFeat_PT.yaml")
CLASSIFIER = ["MASK.ENABLE", "False", "MODEL.MODEL_NAME", "MViT", "MODEL.NUM_CLASSES", "3"]


def tiny(*opts):
    torch.manual_seed(0)
    return build_model(load_config(VIT, [*CLASSIFIER, *opts])).eval()


def block_outputs(model, x):
    """Every block's output (B, 1+N, D), computed step by step from the model's parts."""
    tokens, grid = model.patch_embed(x)
    tokens = model.add_cls_and_pos(tokens, grid)
    outputs = []
    for block in model.blocks:
        tokens, grid = block(tokens, grid)
        outputs.append(tokens)
    return outputs


@pytest.fixture(scope="module")
def model_and_blocks():
    model = tiny()
    x = torch.randn(2, 3, 8, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return model, x, block_outputs(model, x)


def normalized(block):
    return F.layer_norm(block[:, 1:], block.shape[-1:])


def test_mean_is_the_mean_of_the_last_blocks_grid_tokens(model_and_blocks):
    model, x, blocks = model_and_blocks
    features = pooled_features(model, x, "mean")
    assert features.tokens.shape == (2, 4 * 4 * 4, 64)
    torch.testing.assert_close(features.tokens, blocks[-1][:, 1:], atol=1e-5, rtol=0)
    torch.testing.assert_close(features.pooled, blocks[-1][:, 1:].mean(dim=1), atol=1e-5, rtol=0)


def test_cls_is_the_last_blocks_class_token(model_and_blocks):
    model, x, blocks = model_and_blocks
    features = pooled_features(model, x, "cls")
    torch.testing.assert_close(features.pooled, blocks[-1][:, 0], atol=1e-5, rtol=0)
    assert not torch.allclose(features.pooled, blocks[-1][:, 1:].mean(dim=1), atol=1e-3)  # not the mean
    torch.testing.assert_close(features.tokens, blocks[-1][:, 1:], atol=1e-5, rtol=0)


def test_mean_and_concatenation_of_the_last_k_blocks(model_and_blocks):
    model, x, blocks = model_and_blocks
    mean_of_two = pooled_features(model, x, "mean_last_k", last_k=2)
    expected = (normalized(blocks[1]) + normalized(blocks[2])) / 2  # (B, N, D)
    torch.testing.assert_close(mean_of_two.tokens, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(mean_of_two.pooled, expected.mean(dim=1), atol=1e-5, rtol=0)
    all_three = pooled_features(model, x, "concat_last_k", last_k=3)
    assert all_three.pooled.shape == (2, 3 * 64)
    for index in range(3):
        torch.testing.assert_close(all_three.pooled[:, 64 * index:64 * (index + 1)],
                                   normalized(blocks[index]).mean(dim=1), atol=1e-5, rtol=0)
    # Each layer normalized: every token's 64 values have mean 0 and variance 1 per block.
    torch.testing.assert_close(all_three.tokens.view(2, 64, 3, 64).mean(dim=-1), torch.zeros(2, 64, 3),
                               atol=1e-5, rtol=0)
    assert (pooling_label("mean_last_k", 2), pooling_label("concat_last_k", 3)) == ("mean_last_2", "concat_last_3")


def test_a_pooling_the_model_cannot_give_is_refused_naming_the_key():
    without_cls = tiny("MVIT.CLS_EMBED_ON", "False")
    x = torch.zeros(1, 3, 8, 64, 64)
    with pytest.raises(ConfigError, match="has no class token to pool: build it with MVIT.CLS_EMBED_ON True"):
        pooled_features(without_cls, x, "cls")
    assert pooled_features(without_cls, x, "mean").pooled.shape == (1, 64)
    with pytest.raises(ConfigError, match=r"the encoder has 3 blocks: PROBE.POOL_LAST_K must be in \[1, 3\], got 4"):
        check_pooling_fits(without_cls, "mean_last_k", 4)
    with pytest.raises(ConfigError, match="unknown pooling 'max'"):
        check_pooling_fits(without_cls, "max", 1)


def test_blocks_of_two_stages_are_refused_naming_how_many_share_one():
    # The demo's MViT: block 0 on the 4 x 16 x 16 grid, blocks 1-3 pooled to 4 x 8 x 8 (width 64).
    mvit = build_model(load_config(os.path.join(REPO, "configs", "demo", "MViT_tiny_FT.yaml"))).eval()
    x = torch.zeros(1, 3, 8, 64, 64)
    shapes = r"\(1025, 64\), \(257, 64\), \(257, 64\), \(257, 64\), with the class token\)"
    with pytest.raises(ConfigError, match=shapes + ": the last 3 share one stage; set PROBE.POOL_LAST_K to at most 3"):
        pooled_features(mvit, x, "mean_last_k", last_k=4)
    assert pooled_features(mvit, x, "concat_last_k", last_k=3).pooled.shape == (1, 3 * 64)
