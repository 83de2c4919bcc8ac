"""What the random, tube and frame generators share: grid and ratio checks, and
"mask exactly k of n units, uniformly" from a torch.Generator."""

import math
from typing import Sequence, Tuple

import torch
from torch import Tensor


def check_grid_and_ratio(grid: Sequence[int], mask_ratio: float) -> Tuple[int, int, int]:
    """The grid as a (t, h, w) tuple of ints; ValueError unless it has three positive
    sizes and 0 < mask_ratio < 1."""
    sizes = tuple(int(size) for size in grid)
    if len(sizes) != 3 or min(sizes) < 1:
        raise ValueError(f"grid must be three positive sizes (t, h, w), got {tuple(grid)}")
    if not 0.0 < mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must lie in (0, 1), got {mask_ratio}")
    return sizes


def masked_count(ratio: float, units: int, what: str) -> int:
    """round(ratio * units), which must leave at least one unit masked and one visible."""
    count = round(ratio * units)
    if not 0 < count < units:
        raise ValueError(
            f"mask_ratio {ratio} masks {count} of the {units} {what}; at least one must be "
            "masked and one visible"
        )
    return count


def exact_random_mask(shape: Sequence[int], count: int, generator: torch.Generator) -> Tensor:
    """bool `shape`, True = masked, with exactly `count` units masked, every subset of
    that size equally likely."""
    order = torch.randperm(math.prod(shape), generator=generator)
    mask = torch.zeros(math.prod(shape), dtype=torch.bool)
    mask[order[:count]] = True
    return mask.view(*shape)
