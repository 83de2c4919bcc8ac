import pytest
import torch

from slowmask.config import get_cfg
from slowmask.masking import MASK_REGISTRY, CubeMaskGenerator


@pytest.mark.parametrize("grid, ratio", [((8, 7, 7), 0.4), ((2, 4, 4), 0.5), ((1, 14, 14), 0.4)])
def test_masked_count_is_the_rounded_ratio(grid, ratio):
    generator = CubeMaskGenerator(grid, ratio)
    expected = round(ratio * grid[0] * grid[1] * grid[2])
    rng = torch.Generator().manual_seed(0)
    for _ in range(150):
        mask = generator(rng)
        assert mask.dtype == torch.bool and mask.shape == grid
        assert int(mask.sum()) == expected


@pytest.mark.parametrize(
    "grid, ratio", [((1, 1, 2), 0.5), ((4, 1, 1), 0.5), ((8, 14, 14), 0.9), ((3, 5, 2), 0.1)]
)
def test_small_and_dense_grids_terminate_exactly(grid, ratio):
    mask = CubeMaskGenerator(grid, ratio)(torch.Generator().manual_seed(0))
    assert int(mask.sum()) == round(ratio * mask.numel())


def test_deterministic_per_seed_and_varies_across_seeds():
    generator = CubeMaskGenerator((8, 7, 7), 0.4)
    first = generator(torch.Generator().manual_seed(5))
    assert torch.equal(first, generator(torch.Generator().manual_seed(5)))
    masks = {tuple(generator(torch.Generator().manual_seed(seed)).flatten().tolist()) for seed in range(20)}
    assert len(masks) == 20


def test_masks_are_blocks_spanning_time():
    # Cube masks are space-time blocks: most masked units are also masked in a neighbouring frame.
    generator = CubeMaskGenerator((8, 7, 7), 0.4)
    rng = torch.Generator().manual_seed(0)
    shared, total = 0, 0
    for _ in range(50):
        mask = generator(rng)
        neighbour = torch.zeros_like(mask)
        neighbour[1:] |= mask[:-1]
        neighbour[:-1] |= mask[1:]
        shared += int((mask & neighbour).sum())
        total += int(mask.sum())
    assert shared / total > 0.5


def test_max_block_area_bounds_blocks():
    generator = CubeMaskGenerator((1, 14, 14), 0.1, max_block_area=4, min_block_area=4)
    mask = generator(torch.Generator().manual_seed(0))
    assert int(mask.sum()) == 20


def test_invalid_arguments():
    with pytest.raises(ValueError, match="mask_ratio must lie in"):
        CubeMaskGenerator((2, 4, 4), 1.0)
    with pytest.raises(ValueError, match="three positive sizes"):
        CubeMaskGenerator((4, 4), 0.5)
    with pytest.raises(ValueError, match="min_block_area <= max_block_area"):
        CubeMaskGenerator((2, 4, 4), 0.5, min_block_area=5, max_block_area=4)


def test_block_is_cube_on_one_frame():
    assert MASK_REGISTRY.get("block") is MASK_REGISTRY.get("cube") is CubeMaskGenerator


def test_every_registered_generator_smoke():
    # Built as the registry builds them (multiblock takes its sets from MASK.MULTIBLOCK_*).
    for name, cls in MASK_REGISTRY:
        mask = cls.from_config(get_cfg(), grid=(2, 4, 4), mask_ratio=0.5)(torch.Generator().manual_seed(0))
        assert mask.dtype == torch.bool and mask.shape == (2, 4, 4), name
