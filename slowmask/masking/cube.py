"""Block masks. MaskFeat's cube masking (Wei et al., 2022, Sec. 4.1): space-time blocks,
so that a masked region cannot be recovered by copying the same place from a
neighbouring frame. Images (t = 1) use the same class, registered also as "block":
BEiT-style block masking with the cube's area bounds (PySlowFast's image path bounds a
block's area by AUG.MAX_MASK_PATCHES_PER_BLOCK instead, which `from_config` passes as
max_block_area).

Per-frame block masking ("frame_block") draws an independent 2-D block mask at every
temporal index: where the cube mask hides a region for a span of frames, this one draws
each frame's blocks anew, so a masked region is often visible in a neighbouring frame and
the task tests spatial reconstruction with motion cues. ("frame" masks whole temporal
slices instead, as PySlowFast's AUG.MASK_FRAMES; see uniform.py.)
"""

import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from fvcore.common.config import CfgNode
from torch import Tensor

from .build import MASK_REGISTRY
from .grids import Grid, check_grid, check_mask_ratio

# Boxes are (count, 6) int64 rows (front, top, left, span, height, width) on the grid.
Boxes = Tensor


class CubeMaskGenerator:
    """Cube masks on the mask grid: bool (t, h, w), True = masked, with exactly
    round(mask_ratio * t * h * w) units masked.

    Blocks follow PySlowFast's MaskingGenerator3D: a spatial area uniform in
    [min_block_area, max_block_area], a log-uniform aspect ratio in [min_aspect,
    max_aspect], a temporal span uniform in [1, t], a position uniform in the grid
    (block height < h and width < w, as there). A block is accepted when it masks at
    least one new unit and no more than the remainder, with up to `max_attempts`
    draws per block. Where PySlowFast then stops short of the ratio, this class adds
    a trimmed block: a drawn block placed over a random unmasked unit, whose
    unmasked units are masked in raster order up to the remainder.

    Args:
        grid: mask grid (t, h, w).
        mask_ratio: fraction of units to mask, in (0, 1).
        min_block_area: smallest spatial block area (default max_block_area // 5).
        max_block_area: largest spatial block area (default h * w).
        min_aspect: smallest height / width ratio of a block.
        max_aspect: largest ratio (default 1 / min_aspect).
        max_attempts: draws per block before the trimmed block.
    """

    def __init__(
        self,
        grid: Sequence[int],
        mask_ratio: float,
        min_block_area: Optional[int] = None,
        max_block_area: Optional[int] = None,
        min_aspect: float = 0.3,
        max_aspect: Optional[float] = None,
        max_attempts: int = 100,
    ):
        self.grid = check_grid(grid)
        self.num_masked = round(check_mask_ratio(mask_ratio) * math.prod(self.grid))
        self.max_block_area = max_block_area if max_block_area is not None else self.grid[1] * self.grid[2]
        self.min_block_area = min_block_area if min_block_area is not None else self.max_block_area // 5
        if not 0 <= self.min_block_area <= self.max_block_area or min_aspect <= 0 or max_attempts < 1:
            raise ValueError(
                "need 0 <= min_block_area <= max_block_area, min_aspect > 0 and max_attempts >= 1, got "
                f"{self.min_block_area}, {self.max_block_area}, {min_aspect}, {max_attempts}"
            )
        self.log_aspect = (math.log(min_aspect), math.log(max_aspect or 1.0 / min_aspect))
        self.max_attempts = max_attempts

    @classmethod
    def from_config(cls, cfg: CfgNode, grid: Grid, mask_ratio: float) -> "CubeMaskGenerator":
        """With AUG.MAX_MASK_PATCHES_PER_BLOCK (when set) as max_block_area."""
        return cls(grid, mask_ratio, max_block_area=cfg.AUG.MAX_MASK_PATCHES_PER_BLOCK)

    def __repr__(self) -> str:
        return (
            f"CubeMaskGenerator(grid={self.grid}, num_masked={self.num_masked}, block_area="
            f"[{self.min_block_area}, {self.max_block_area}], max_attempts={self.max_attempts})"
        )

    def __call__(self, generator: torch.Generator) -> Tensor:
        """A fresh mask, bool (t, h, w), True = masked; random only through `generator`."""
        mask = torch.zeros(self.grid, dtype=torch.bool)
        count = 0
        while count < self.num_masked:
            added = self._add_block(mask, self.num_masked - count, generator)
            if added == 0:
                added = self._add_trimmed_block(mask, self.num_masked - count, generator)
            count += added
        return mask

    def _block_shapes(self, count: int, generator: torch.Generator) -> Tuple[Tensor, Tensor, Tensor]:
        """Spans, heights and widths (count,) int64 of `count` random blocks."""
        unit = torch.rand(3, count, generator=generator, dtype=torch.float64)
        area = self.min_block_area + (self.max_block_area - self.min_block_area) * unit[0]
        aspect = torch.exp(self.log_aspect[0] + (self.log_aspect[1] - self.log_aspect[0]) * unit[1])
        height = torch.round(torch.sqrt(area * aspect)).long()
        width = torch.round(torch.sqrt(area / aspect)).long()
        span = 1 + (unit[2] * self.grid[0]).long()
        return span, height, width

    def _draw_boxes(self, count: int, generator: torch.Generator) -> Boxes:
        """Up to `count` random blocks that fit the grid, as Boxes (PySlowFast's fit rule)."""
        span, height, width = self._block_shapes(count, generator)
        extent = torch.stack([span, height, width], dim=1)
        sizes = torch.tensor(self.grid)
        unit = torch.rand(count, 3, generator=generator, dtype=torch.float64)
        start = (unit * (sizes - extent + 1).clamp(min=1)).long()
        fits = (height < self.grid[1]) & (width < self.grid[2])
        return torch.cat([start, extent], dim=1)[fits]

    def _add_block(self, mask: Tensor, remaining: int, generator: torch.Generator) -> int:
        """Mask the first drawn block that adds 1..remaining units; the number added (0: none)."""
        boxes = self._draw_boxes(self.max_attempts, generator)
        added = boxes[:, 3:].prod(dim=1) - _masked_in_boxes(mask, boxes)
        accepted = ((added > 0) & (added <= remaining)).nonzero()
        if len(accepted) == 0:
            return 0
        front, top, left, span, height, width = boxes[accepted[0, 0]].tolist()
        mask[front : front + span, top : top + height, left : left + width] = True
        return int(added[accepted[0, 0]])

    def _add_trimmed_block(self, mask: Tensor, remaining: int, generator: torch.Generator) -> int:
        """Mask up to `remaining` unmasked units, in raster order, of a block placed
        over a random unmasked unit; the number added (at least 1)."""
        free = (~mask).nonzero()
        anchor = free[torch.randint(len(free), (1,), generator=generator)][0]
        sizes = torch.tensor(self.grid)
        extent = torch.stack(self._block_shapes(1, generator), dim=1)[0].clamp(min=1)
        extent = torch.minimum(extent, sizes)
        low = (anchor - extent + 1).clamp(min=0)
        high = torch.minimum(anchor, sizes - extent)
        unit = torch.rand(3, generator=generator, dtype=torch.float64)
        start = low + (unit * (high - low + 1)).long()
        box = tuple(slice(s, s + e) for s, e in zip(start.tolist(), extent.tolist()))
        unmasked = ~mask[box]
        chosen = unmasked & (unmasked.flatten().cumsum(0) <= remaining).view_as(unmasked)
        mask[box] |= chosen
        return int(chosen.sum())


def _masked_in_boxes(mask: Tensor, boxes: Boxes) -> Tensor:
    """Masked units inside each box, (count,) int64, from a summed-volume table of
    `mask` (t, h, w)."""
    table = F.pad(mask.long().cumsum(0).cumsum(1).cumsum(2), (1, 0, 1, 0, 1, 0))
    start, end = boxes[:, :3], boxes[:, :3] + boxes[:, 3:]
    total = torch.zeros(len(boxes), dtype=torch.long)
    # Inclusion-exclusion over the box's 8 corners in the table.
    for corner in range(8):
        use_end = [(corner >> axis) & 1 for axis in range(3)]
        index = [end[:, axis] if e else start[:, axis] for axis, e in enumerate(use_end)]
        sign = -1 if (3 - sum(use_end)) % 2 else 1
        total += sign * table[index[0], index[1], index[2]]
    return total


MASK_REGISTRY.register(CubeMaskGenerator, name="cube")
# The image case: cube masking on a grid with t = 1.
MASK_REGISTRY.register(CubeMaskGenerator, name="block")


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
        t, h, w = self.grid = check_grid(grid)
        self.frame = CubeMaskGenerator((1, h, w), mask_ratio, max_block_area=max_block_area)

    @classmethod
    def from_config(cls, cfg: CfgNode, grid: Grid, mask_ratio: float) -> "FrameBlockMaskGenerator":
        """With AUG.MAX_MASK_PATCHES_PER_BLOCK (when set) as max_block_area."""
        return cls(grid, mask_ratio, max_block_area=cfg.AUG.MAX_MASK_PATCHES_PER_BLOCK)

    def __repr__(self) -> str:
        return f"FrameBlockMaskGenerator(grid={self.grid}, per frame: {self.frame!r})"

    def __call__(self, generator: torch.Generator) -> Tensor:
        """A fresh mask, bool (t, h, w); random only through `generator`."""
        return torch.cat([self.frame(generator) for _ in range(self.grid[0])])
