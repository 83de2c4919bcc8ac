"""Attention padded to a fused-kernel width (q, k, v of one width, a multiple of 8)
equals the plain matmul-softmax path, forward and backward, and is what MVIT.ATTENTION
chooses per device."""

import os

import pytest
import torch
import torch.nn.functional as F

from slowmask.config import load_config
from slowmask.methods import build_model
from slowmask.models import MultiScaleAttention
from slowmask.models.layers.attention import FUSED_WIDTH_MULTIPLE, attention_path, fused_width, pads_on
from numerics import assert_close_at_scale, assert_same_gradients

# Head width 6: with the relative-position channels 6 + 4 + 4 + 4 (both tables), 6 + 4
# (temporal) and 6 + 8 (spatial), none of them a multiple of 8.
GEOMETRY = dict(dim=12, dim_out=12, num_heads=2, input_size=(4, 8, 8), kernel_q=(3, 3, 3), stride_q=(1, 2, 2),
                kernel_kv=(3, 3, 3), stride_kv=(1, 2, 2), residual_pooling=True)
TABLES = {"both": dict(rel_pos_spatial=True, rel_pos_temporal=True),
          "spatial": dict(rel_pos_spatial=True), "temporal": dict(rel_pos_temporal=True)}


def _pair(**kwargs):
    """Padded SDPA and plain attention with equal weights."""
    torch.manual_seed(0)
    padded = MultiScaleAttention(use_sdpa=True, pad_to_fused=True, **kwargs)
    plain = MultiScaleAttention(use_sdpa=False, **kwargs)
    plain.load_state_dict(padded.state_dict())
    return padded, plain


@pytest.mark.parametrize("tables", sorted(TABLES))
@pytest.mark.parametrize("has_cls_embed", [True, False])
def test_padded_equals_plain_forward_and_backward(tables, has_cls_embed):
    padded, plain = _pair(has_cls_embed=has_cls_embed, **GEOMETRY, **TABLES[tables])
    x = torch.randn(2, int(has_cls_embed) + 4 * 8 * 8, 12, generator=torch.Generator().manual_seed(1))
    x_padded, x_plain = x.clone().requires_grad_(), x.clone().requires_grad_()
    out, grid = padded(x_padded, (4, 8, 8))
    out_plain, grid_plain = plain(x_plain, (4, 8, 8))
    assert grid == grid_plain == (4, 4, 4) and out.shape == out_plain.shape
    assert_close_at_scale(out, out_plain)
    out.square().sum().backward()
    out_plain.square().sum().backward()
    assert_close_at_scale(x_padded.grad, x_plain.grad)
    assert_same_gradients(padded.named_parameters(), plain.named_parameters())


@pytest.mark.parametrize("pad_to_fused, widths", [(True, {(24, 24, 24)}), (False, {(18, 18, 6)})])
def test_sdpa_sees_one_fused_width_only_when_padding(monkeypatch, pad_to_fused, widths):
    seen = set()
    sdpa = F.scaled_dot_product_attention

    def recording(q, k, v, **kwargs):
        seen.add((q.shape[-1], k.shape[-1], v.shape[-1]))
        return sdpa(q, k, v, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", recording)
    attention = MultiScaleAttention(use_sdpa=True, pad_to_fused=pad_to_fused, **GEOMETRY, **TABLES["both"])
    out, _ = attention(torch.randn(1, 1 + 4 * 8 * 8, 12), (4, 8, 8))
    assert seen == widths and out.shape == (1, 1 + 4 * 4 * 4, 12)


def test_fused_width_and_the_default_per_device():
    assert [fused_width(w) for w in (8, 9, 118, 120)] == [8, 16, 120, 120]
    assert FUSED_WIDTH_MULTIPLE == 8
    assert pads_on(torch.device("cuda"), None) and pads_on(torch.device("cpu"), None)
    assert not pads_on(torch.device("meta"), None) and not pads_on(torch.device("cuda", 0), False)
    assert attention_path("auto") == (True, None) and attention_path("plain") == (False, False)
    with pytest.raises(ValueError, match="MVIT.ATTENTION 'flash' is not known"):
        attention_path("flash")


@pytest.mark.parametrize("choice, use_sdpa, pad_to_fused", [("plain", False, False), ("sdpa_padded", True, True),
                                                            ("auto", True, None)])
def test_the_config_key_reaches_every_attention(choice, use_sdpa, pad_to_fused):
    cfg_path = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "demo", "MViT_tiny_MaskFeat_PT.yaml")
    model = build_model(load_config(cfg_path, ["MVIT.ATTENTION", choice]))
    modules = [m for m in model.modules() if isinstance(m, MultiScaleAttention)]
    assert modules and {(m.use_sdpa, m.pad_to_fused) for m in modules} == {(use_sdpa, pad_to_fused)}
