"""VideoMAE's tube masking (Tong et al., 2022, Sec. 3.3): one random 2-D mask repeated
over every temporal index. Neighbouring frames are nearly copies of each other, so a
patch masked in one frame but visible in the next would be solved by copying; a tube
hides the same place in every frame."""

from typing import Sequence

import torch
from torch import Tensor

from .grid_mask import check_grid_and_ratio, exact_random_mask, masked_count
from .registry import MASK_REGISTRY


@MASK_REGISTRY.register(name="tube")
class TubeMaskGenerator:
    """bool (t, h, w), True = masked: exactly round(mask_ratio * h * w) spatial units,
    drawn uniformly, masked at every t (so the masked fraction is the same per frame).

    Args:
        grid: mask grid (t, h, w).
        mask_ratio: fraction of spatial units to mask, in (0, 1).
    """

    def __init__(self, grid: Sequence[int], mask_ratio: float) -> None:
        self.grid = check_grid_and_ratio(grid, mask_ratio)
        _, h, w = self.grid
        self.num_masked_per_frame = masked_count(mask_ratio, h * w, "spatial mask units")

    def __repr__(self) -> str:
        return f"TubeMaskGenerator(grid={self.grid}, num_masked_per_frame={self.num_masked_per_frame})"

    def __call__(self, generator: torch.Generator) -> Tensor:
        """A fresh mask, bool (t, h, w); random only through `generator`."""
        t, h, w = self.grid
        spatial = exact_random_mask((1, h, w), self.num_masked_per_frame, generator)
        return spatial.expand(t, h, w).clone()
