"""Random, tube, frame and per-frame block masks: exact counts, structure, determinism, bad input."""

import pytest
import torch

from slowmask.masking import (
    MASK_REGISTRY,
    FrameBlockMaskGenerator,
    FrameMaskGenerator,
    RandomMaskGenerator,
    TubeMaskGenerator,
)


def _draw(generator, seed=0):
    return generator(torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("grid, ratio", [((8, 14, 14), 0.9), ((1, 14, 14), 0.75), ((2, 3, 5), 0.5)])
def test_random_exact_count(grid, ratio):
    for seed in range(3):
        mask = _draw(RandomMaskGenerator(grid, ratio), seed)
        assert mask.shape == grid and mask.dtype == torch.bool
        assert int(mask.sum()) == round(ratio * mask.numel())


def test_random_is_uniform_over_units():
    generator = RandomMaskGenerator((1, 4, 4), 0.25)
    frequency = torch.stack([_draw(generator, seed) for seed in range(2000)]).float().mean(0)
    assert torch.allclose(frequency, torch.full_like(frequency, 0.25), atol=0.05)


def test_tube_identical_over_t_and_exact():
    mask = _draw(TubeMaskGenerator((8, 14, 14), 0.9))
    assert (mask == mask[:1]).all()
    assert int(mask[0].sum()) == round(0.9 * 196)
    assert int(mask.sum()) == 8 * round(0.9 * 196)


def test_frame_masks_whole_slices():
    mask = _draw(FrameMaskGenerator((8, 7, 7), 0.5))
    per_frame = mask.flatten(1).float().mean(1)
    assert set(per_frame.tolist()) == {0.0, 1.0}
    assert int((per_frame == 1).sum()) == 4


def test_frame_block_masks_each_frame_exactly_and_independently():
    masks = torch.stack([_draw(FrameBlockMaskGenerator((8, 14, 14), 0.4), seed) for seed in range(4)])
    assert masks.shape == (4, 8, 14, 14)
    assert (masks.flatten(2).sum(-1) == round(0.4 * 196)).all()
    differs_from_previous_frame = (masks[:, 1:] != masks[:, :-1]).flatten(2).any(-1)
    assert differs_from_previous_frame.float().mean() > 0.9  # not a tube


@pytest.mark.parametrize("name", ["random", "tube", "frame", "frame_block", "cube", "block"])
def test_deterministic_under_a_seed(name):
    generator = MASK_REGISTRY.get(name)(grid=(4, 8, 8), mask_ratio=0.5)
    assert torch.equal(_draw(generator, 7), _draw(generator, 7))
    assert not all(torch.equal(_draw(generator, 7), _draw(generator, seed)) for seed in range(8, 12))


@pytest.mark.parametrize("cls", [RandomMaskGenerator, TubeMaskGenerator, FrameMaskGenerator, FrameBlockMaskGenerator])
@pytest.mark.parametrize("ratio", [0.0, 1.0])
def test_ratio_outside_open_interval(cls, ratio):
    with pytest.raises(ValueError, match=r"mask_ratio must lie in \(0, 1\)"):
        cls((2, 4, 4), ratio)


def test_ratio_that_masks_everything_after_rounding():
    with pytest.raises(ValueError, match="masks 16 of the 16 mask units; at least one must be masked and one visible"):
        RandomMaskGenerator((1, 4, 4), 0.99)


def test_frame_mask_of_an_image():
    with pytest.raises(ValueError, match="frame masks need t >= 2"):
        FrameMaskGenerator((1, 14, 14), 0.5)


def test_bad_grid():
    with pytest.raises(ValueError, match=r"grid must be three positive sizes"):
        TubeMaskGenerator((14, 14), 0.5)
