"""Frame masking (PySlowFast's AUG.MASK_FRAMES): whole temporal slices are masked, so
the model predicts a missing frame from the frames around it (temporal interpolation)
rather than a missing region from its surroundings."""

from typing import Sequence

import torch
from torch import Tensor

from .grid_mask import check_grid_and_ratio, exact_random_mask, masked_count
from .registry import MASK_REGISTRY


@MASK_REGISTRY.register(name="frame")
class FrameMaskGenerator:
    """bool (t, h, w), True = masked: exactly round(mask_ratio * t) temporal indices,
    drawn uniformly, each masked over its whole (h, w) slice.

    Args:
        grid: mask grid (t, h, w); t must be at least 2 (one masked, one visible slice).
        mask_ratio: fraction of temporal slices to mask, in (0, 1).
    """

    def __init__(self, grid: Sequence[int], mask_ratio: float) -> None:
        self.grid = check_grid_and_ratio(grid, mask_ratio)
        t = self.grid[0]
        self.num_masked_frames = masked_count(mask_ratio, t, "temporal slices (frame masks need t >= 2)")

    def __repr__(self) -> str:
        return f"FrameMaskGenerator(grid={self.grid}, num_masked_frames={self.num_masked_frames})"

    def __call__(self, generator: torch.Generator) -> Tensor:
        """A fresh mask, bool (t, h, w); random only through `generator`."""
        t, h, w = self.grid
        frames = exact_random_mask((t, 1, 1), self.num_masked_frames, generator)
        return frames.expand(t, h, w).clone()
