"""Multiscale attention: the SDPA path (relative positions as an additive mask) equals
the explicit matmul-softmax path, forward and backward; pooling and bias geometry."""

import pytest
import torch

from slowmask.models import MultiScaleAttention
from slowmask.models.layers.relative_position import decomposed_bias, relative_index
from numerics import assert_close_at_scale, assert_same_gradients


def _pair(**kwargs):
    """Two attentions with equal weights, SDPA and plain."""
    torch.manual_seed(0)
    sdpa = MultiScaleAttention(use_sdpa=True, **kwargs)
    plain = MultiScaleAttention(use_sdpa=False, **kwargs)
    plain.load_state_dict(sdpa.state_dict())
    return sdpa, plain


POOLED = dict(
    dim=16,
    dim_out=32,
    num_heads=2,
    input_size=(4, 8, 8),
    kernel_q=(3, 3, 3),
    stride_q=(1, 2, 2),
    kernel_kv=(3, 3, 3),
    stride_kv=(1, 4, 4),
    rel_pos_spatial=True,
    rel_pos_temporal=True,
    residual_pooling=True,
)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"pool_first": True},
        {"mode": "max"},
        {"separate_qkv": True, "has_cls_embed": False},
    ],
)
def test_sdpa_equals_plain_attention_forward_and_backward(options):
    kwargs = {**POOLED, **options}
    sdpa, plain = _pair(**kwargs)
    # Non-zero tables make the bias matter (they are trunc-normal initialized).
    prefix = 1 if kwargs.get("has_cls_embed", True) else 0
    x = torch.randn(2, prefix + 4 * 8 * 8, 16, requires_grad=True)
    x_plain = x.detach().clone().requires_grad_(True)
    out, grid = sdpa(x, (4, 8, 8))
    out_plain, grid_plain = plain(x_plain, (4, 8, 8))
    assert grid == grid_plain == (4, 4, 4)
    assert out.shape == (2, prefix + 4 * 4 * 4, 32)
    assert_close_at_scale(out, out_plain)
    weights = torch.randn_like(out)
    (out * weights).sum().backward()
    (out_plain * weights).sum().backward()
    assert_close_at_scale(x.grad, x_plain.grad)
    assert_same_gradients(sdpa.named_parameters(), plain.named_parameters())
    assert sdpa.rel_pos_h.grad.abs().sum() > 0


def test_relative_position_tables_have_pyslowfast_shapes():
    attn = MultiScaleAttention(**POOLED)
    # 2 * max(8 // 2, 8 // 4) - 1 spatial offsets, 2 * 4 - 1 temporal; head width 16.
    assert attn.rel_pos_h.shape == attn.rel_pos_w.shape == (7, 16)
    assert attn.rel_pos_t.shape == (7, 16)
    zero = MultiScaleAttention(**POOLED, rel_pos_zero_init=True)
    assert zero.rel_pos_h.abs().sum() == 0


def test_bias_is_zero_for_the_class_token_and_decomposes():
    q = torch.randn(1, 1, 1 + 2 * 2 * 2, 4)
    h, w, t = torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 4)
    bias = decomposed_bias(q, (2, 2, 2), (2, 2, 2), h, w, t, num_prefix=1)
    assert bias.shape == (1, 1, 9, 9)
    assert bias[..., 0, :].abs().sum() == 0 and bias[..., :, 0].abs().sum() == 0
    # query (t=1, h=0, w=1) against key (t=0, h=1, w=1): offsets +1, -1, 0 -> rows 2, 0, 1.
    qi, ki = 1 + (1 * 4 + 0 * 2 + 1), 1 + (0 * 4 + 1 * 2 + 1)
    expected = q[0, 0, qi] @ (t[2] + h[0] + w[1])
    torch.testing.assert_close(bias[0, 0, qi, ki], expected)


def test_relative_index_scales_coarse_grids_onto_fine_ones():
    # 4 queries against 2 keys pooled by 2: key j sits at fine position 2j.
    index = relative_index(4, 2, torch.device("cpu"))
    assert index.tolist() == [[2, 0], [3, 1], [4, 2], [5, 3]]


def test_tables_are_resized_for_other_grids():
    attn = MultiScaleAttention(**POOLED)
    out, grid = attn(torch.randn(1, 1 + 2 * 12 * 12, 16), (2, 12, 12))
    assert grid == (2, 6, 6) and out.shape == (1, 1 + 2 * 6 * 6, 32)


def test_conv_unshared_needs_pool_first():
    with pytest.raises(ValueError, match="conv_unshared"):
        MultiScaleAttention(**POOLED, mode="conv_unshared")
