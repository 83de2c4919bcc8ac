"""VideoMAE V2's running-cell mask (Wang et al., 2023, Sec. 3.2), the decoder's mask of dual
masking: the grid is tiled by small cells (2x2 units) that all carry the same pattern, and
the pattern turns by one unit from each frame to the next. Every cell hides the same count
in every frame, and over a full turn each place is hidden and shown equally often, so the
decoder still sees every location at some time while it runs on a fraction of the tokens.

The pattern, as VideoMAEv2's `dataset/masking_generator.py` defines it: a queue of the cell's
units, the first `num_masked_per_cell` hidden (1) and the rest shown (0); at frame k of
phase p, unit i of the cell (row-major) reads queue[(i + p + k + 1) % cell_area]. A mask is
one phase drawn uniformly.
"""

from typing import Sequence, Tuple

import torch
from fvcore.common.config import CfgNode
from torch import Tensor

from slowmask.geometry import Grid

from .build import MASK_REGISTRY
from .grids import check_grid, check_mask_ratio, masked_count


@MASK_REGISTRY.register(name="running_cell")
class RunningCellMaskGenerator:
    """bool (t, h, w), True = masked: the running-cell pattern at a random phase, with exactly
    round(mask_ratio * cell_area) units masked in every cell of every frame.

    Args:
        grid: mask grid (t, h, w); h and w must be multiples of the cell's sides.
        mask_ratio: fraction of each cell to mask, in (0, 1).
        cell: the cell's (height, width) in grid units; VideoMAE V2 uses 2x2.
    """

    def __init__(self, grid: Sequence[int], mask_ratio: float, cell: Tuple[int, int] = (2, 2)) -> None:
        self.grid = check_grid(grid)
        check_mask_ratio(mask_ratio)
        _, h, w = self.grid
        cell_h, cell_w = cell
        if cell_h < 1 or cell_w < 1 or h % cell_h or w % cell_w:
            raise ValueError(
                f"the running cell {cell_h}x{cell_w} must tile the mask grid's (h, w) = ({h}, {w}): "
                "use an even token grid (e.g. 224 / 16 = 14) or another cell"
            )
        self.cell = (cell_h, cell_w)
        self.num_masked_per_cell = masked_count(mask_ratio, cell_h * cell_w, "units of a running cell")
        self.phase_masks = self._phase_masks()

    @classmethod
    def from_config(cls, cfg: CfgNode, grid: Grid, mask_ratio: float) -> "RunningCellMaskGenerator":
        """The registry's builder: VideoMAE V2's 2x2 cell on `grid`."""
        return cls(grid, mask_ratio)

    def __repr__(self) -> str:
        return (
            f"RunningCellMaskGenerator(grid={self.grid}, cell={self.cell}, "
            f"num_masked_per_cell={self.num_masked_per_cell})"
        )

    @property
    def num_phases(self) -> int:
        """Distinct masks: one per starting position of the queue (the cell's area)."""
        return self.cell[0] * self.cell[1]

    def _phase_masks(self) -> Tensor:
        """bool (num_phases, t, h, w): the mask of every phase."""
        t, h, w = self.grid
        cell_h, cell_w = self.cell
        area = cell_h * cell_w
        queue = torch.arange(area) < self.num_masked_per_cell  # (area,) first units hidden
        unit = torch.arange(area).view(1, 1, cell_h, cell_w)
        phase = torch.arange(area).view(area, 1, 1, 1)
        frame = torch.arange(t).view(1, t, 1, 1)
        # The repository advances the queue before reading frame 0, hence the + 1.
        cells = queue[(unit + phase + frame + 1) % area]  # (phases, t, cell_h, cell_w)
        return cells.repeat(1, 1, h // cell_h, w // cell_w)

    def __call__(self, generator: torch.Generator) -> Tensor:
        """A mask, bool (t, h, w), at a phase drawn through `generator`."""
        phase = int(torch.randint(self.num_phases, (1,), generator=generator))
        return self.phase_masks[phase].clone()
