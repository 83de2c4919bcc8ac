"""The relative-position bias factored into extra query and key channels equals the
full additive bias; the SDPA path that uses it equals the plain path with temporal or
spatial tables alone."""

import pytest
import torch

from slowmask.models import MultiScaleAttention
from slowmask.models.layers.relative_position import decomposed_bias, decomposed_terms, key_indicators
from numerics import assert_close_at_scale, assert_same_gradients


@pytest.mark.parametrize("spatial, temporal", [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("num_prefix", [0, 1])
def test_terms_times_indicators_equal_the_bias(spatial, temporal, num_prefix):
    generator = torch.Generator().manual_seed(0)
    q_grid, k_grid, channels = (4, 6, 6), (2, 3, 3), 8
    q = torch.randn(2, 3, num_prefix + 4 * 6 * 6, channels, generator=generator)
    rel_h = torch.randn(11, channels, generator=generator) if spatial else None
    rel_w = torch.randn(11, channels, generator=generator) if spatial else None
    rel_t = torch.randn(7, channels, generator=generator) if temporal else None
    bias = decomposed_bias(q, q_grid, k_grid, rel_h, rel_w, rel_t, num_prefix)
    terms = decomposed_terms(q, q_grid, k_grid, rel_h, rel_w, rel_t, num_prefix)
    keys = key_indicators(k_grid, temporal, spatial, num_prefix, q.dtype, q.device)
    assert keys.shape == (num_prefix + 2 * 3 * 3, 2 * temporal + 6 * spatial)
    assert_close_at_scale(terms @ keys.t(), bias)


@pytest.mark.parametrize("spatial, temporal", [(True, False), (False, True)])
def test_sdpa_equals_plain_with_one_kind_of_table(spatial, temporal):
    kwargs = dict(dim=16, dim_out=16, num_heads=2, input_size=(4, 8, 8), kernel_kv=(3, 3, 3),
                  stride_kv=(1, 2, 2), rel_pos_spatial=spatial, rel_pos_temporal=temporal)
    torch.manual_seed(0)
    sdpa = MultiScaleAttention(use_sdpa=True, **kwargs)
    plain = MultiScaleAttention(use_sdpa=False, **kwargs)
    plain.load_state_dict(sdpa.state_dict())
    x = torch.randn(2, 1 + 4 * 8 * 8, 16)
    out, _ = sdpa(x, (4, 8, 8))
    out_plain, _ = plain(x, (4, 8, 8))
    assert_close_at_scale(out, out_plain)
    out.square().sum().backward()
    out_plain.square().sum().backward()
    assert_same_gradients(sdpa.named_parameters(), plain.named_parameters())
