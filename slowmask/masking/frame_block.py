"""Per-frame block masking: an independent 2-D block mask at every temporal index.

Where the cube mask hides a region for a span of frames, this one draws each frame's
blocks anew, so a masked region is often visible in a neighbouring frame: the task
tests spatial reconstruction with motion cues. ("frame" masks whole temporal slices
instead, as PySlowFast's AUG.MASK_FRAMES.)
"""

from typing import Optional, Sequence

import torch
from torch import Tensor

from .cube import CubeMaskGenerator
from .registry import MASK_REGISTRY


@MASK_REGISTRY.register(name="frame_block")
class FrameBlockMaskGenerator:
    """bool (t, h, w), True = masked: at every temporal index, a 2-D block mask of
    exactly round(mask_ratio * h * w) units, drawn independently of the other indices
    with the block rules of CubeMaskGenerator on a (1, h, w) grid.

    Args:
        grid: mask grid (t, h, w).
        mask_ratio: fraction of each frame's units to mask, in (0, 1).
        max_block_area: largest spatial block area (default h * w).
    """

    def __init__(self, grid: Sequence[int], mask_ratio: float, max_block_area: Optional[int] = None) -> None:
        t, h, w = CubeMaskGenerator(grid, mask_ratio).grid  # validates grid and ratio
        self.grid = (t, h, w)
        self.frame = CubeMaskGenerator((1, h, w), mask_ratio, max_block_area=max_block_area)

    def __repr__(self) -> str:
        return f"FrameBlockMaskGenerator(grid={self.grid}, per frame: {self.frame!r})"

    def __call__(self, generator: torch.Generator) -> Tensor:
        """A fresh mask, bool (t, h, w); random only through `generator`."""
        return torch.cat([self.frame(generator) for _ in range(self.grid[0])])
