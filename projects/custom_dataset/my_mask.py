"""An example of your own mask generator, outside slowmask: whole rows of the mask grid,
the same rows in every frame (a horizontal band the model must fill in from above and
below). Select it with

    AUG.MASK_TYPE: rows
    DATA.CUSTOM_MODULES: ["my_mask.py"]   # relative to the yaml that names it
"""

from typing import Sequence

import torch

from slowmask.masking import MASK_REGISTRY


@MASK_REGISTRY.register(name="rows")
class RowMaskGenerator:
    """round(mask_ratio * h) of the h rows of the (t, h, w) grid, drawn at random."""

    def __init__(self, grid: Sequence[int], mask_ratio: float) -> None:
        self.grid = tuple(grid)
        self.num_rows = max(1, round(mask_ratio * self.grid[1]))

    @classmethod
    def from_config(cls, cfg, grid, mask_ratio) -> "RowMaskGenerator":
        return cls(grid, mask_ratio)  # the builder has checked the grid and the ratio

    def __call__(self, generator: torch.Generator) -> torch.Tensor:
        """bool (t, h, w), True = masked, random only through `generator`."""
        rows = torch.randperm(self.grid[1], generator=generator)[: self.num_rows]
        mask = torch.zeros(self.grid, dtype=torch.bool)
        mask[:, rows] = True
        return mask
