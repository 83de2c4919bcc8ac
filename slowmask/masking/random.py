"""MAE's random masking (He et al., 2022, Sec. 3; Feichtenhofer et al., 2022, Sec. 3):
uniformly random units, an exact count. With a mask grid coarser than the token grid
it is SimMIM's random masking of 32x32 mask units over 16x16 patches (Xie et al.,
2022, Sec. 3.1)."""

from typing import Sequence

import torch
from torch import Tensor

from .grid_mask import check_grid_and_ratio, exact_random_mask, masked_count
from .registry import MASK_REGISTRY


@MASK_REGISTRY.register(name="random")
class RandomMaskGenerator:
    """bool (t, h, w), True = masked: exactly round(mask_ratio * t * h * w) units drawn
    uniformly without replacement.

    Args:
        grid: mask grid (t, h, w).
        mask_ratio: fraction of units to mask, in (0, 1).
    """

    def __init__(self, grid: Sequence[int], mask_ratio: float) -> None:
        self.grid = check_grid_and_ratio(grid, mask_ratio)
        t, h, w = self.grid
        self.num_masked = masked_count(mask_ratio, t * h * w, "mask units")

    def __repr__(self) -> str:
        return f"RandomMaskGenerator(grid={self.grid}, num_masked={self.num_masked})"

    def __call__(self, generator: torch.Generator) -> Tensor:
        """A fresh mask, bool (t, h, w); random only through `generator`."""
        return exact_random_mask(self.grid, self.num_masked, generator)
