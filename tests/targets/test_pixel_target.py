"""Pixel targets: patchify round trip, per-patch normalization, time stride, errors."""

import pytest
import torch

from slowmask.targets import PixelTarget, patchify, unpatchify


@pytest.mark.parametrize("shape, patch", [((2, 3, 4, 32, 48), (2, 16, 16)), ((1, 3, 1, 32, 32), (1, 8, 8))])
def test_patchify_round_trip(shape, patch):
    clip = torch.randn(shape)
    tokens = patchify(clip, patch)
    grid = tuple(size // p for size, p in zip(shape[2:], patch))
    assert tokens.shape == (shape[0], grid[0] * grid[1] * grid[2], patch[0] * patch[1] * patch[2] * 3)
    assert torch.equal(unpatchify(tokens, patch, grid), clip)


def test_patch_values_in_frame_row_column_channel_order():
    clip = torch.arange(3 * 2 * 4 * 4, dtype=torch.float32).view(1, 3, 2, 4, 4)
    tokens = patchify(clip, (2, 2, 2))
    # token (0, 0, 1): frames 0-1, rows 0-1, columns 2-3; the 2nd value is channel 1 of pixel (0, 0, 2).
    assert tokens[0, 1, 1] == clip[0, 1, 0, 0, 2]
    assert tokens[0, 1, 3] == clip[0, 0, 0, 0, 3]


def test_normalized_target_has_zero_mean_unit_variance_per_patch():
    clip = torch.rand(2, 3, 4, 32, 32) * 5 + 2
    target = PixelTarget(normalize=True, time_stride=False)(clip, (2, 2, 2))
    assert target.shape == (2, 8, 2 * 16 * 16 * 3)
    assert torch.allclose(target.mean(-1), torch.zeros(2, 8), atol=1e-5)
    assert torch.allclose(target.var(-1), torch.ones(2, 8), atol=1e-3)


def test_raw_target_with_time_stride_takes_first_frame_of_each_token():
    clip = torch.rand(1, 3, 4, 32, 32)
    target = PixelTarget(normalize=False, time_stride=True)
    out = target(clip, (2, 2, 2))
    assert out.shape == (1, 8, target.dim((2, 16, 16))) and target.dim((2, 16, 16)) == 768
    assert torch.equal(out, patchify(clip[:, :, ::2], (1, 16, 16)))


def test_grid_not_dividing_clip():
    with pytest.raises(ValueError, match=r"the token grid \(1, 3, 3\) does not divide the clip"):
        PixelTarget()(torch.rand(1, 3, 1, 32, 32), (1, 3, 3))


def test_patch_not_dividing_clip():
    with pytest.raises(ValueError, match=r"the patch \(1, 16, 16\) does not divide the clip"):
        patchify(torch.rand(1, 3, 1, 40, 32), (1, 16, 16))
