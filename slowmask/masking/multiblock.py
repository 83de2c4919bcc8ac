"""V-JEPA's 3-D multi-block masks (Bardes et al., 2024, Sec. 3.2; V-JEPA 2, Assran et al.,
2025): a mask set is a few large space-time blocks, all of one drawn shape, placed
independently; their union is what the predictor must recover from the rest. Short-range
sets (8 blocks of 15 % of the frame) and long-range sets (2 blocks of 70 %) are drawn side
by side, each with full temporal extent, so that neither copying from a neighbouring frame
nor interpolating from nearby tokens solves the task.

One set's block shape, as vjepa2's `src/masks/multiseq_multiblock3d.py` draws it: a
spatial area of int(spatial_scale * h * w) units, an aspect ratio (height / width) uniform
in [aspect_ratio[0], aspect_ratio[1]], height round(sqrt(area * ratio)) and width
round(sqrt(area / ratio)) (each at most the grid's side), a temporal span
max(1, int(temporal_scale * t)); each block's corner is uniform over the places it fits.
The reference draws one shape per set for a whole batch from a shared step counter; here
every item draws its own from its generator, so that a mask depends only on (seed, epoch,
index) like every other mask of slowmask.

A predictor needs the same numbers of context and predicted tokens in every item of a
batch: `equal_count_indices` cuts each item to the batch's smallest counts as vjepa2's
collator does, keeping the first positions in (t, h, w) order, so an item loses its last
context (or predicted) tokens, those of its latest frames. On a small grid the counts differ
much between items (4x4x4 tokens, 8 blocks of 15 %: 20-44 predicted), and the cut drops
most tokens of the last frames; `random_equal_count_indices` keeps a uniform draw of each
item's positions instead, so every frame keeps its share.
"""

import logging
import math
from typing import List, Sequence, Tuple

import torch
from fvcore.common.config import CfgNode
from torch import Tensor

from .build import MASK_REGISTRY
from .grids import Grid, check_grid

logger = logging.getLogger(__name__)

# Redraws of a set whose blocks cover the whole grid before it is refused (vjepa2 retries
# without a bound; a grid that small is a configuration mistake worth naming).
MAX_DRAWS = 100


class MultiBlockMask:
    """One mask set: bool (t, h, w), True = inside one of the set's blocks (masked /
    predicted), the union of `num_blocks` blocks of one drawn shape.

    Args:
        grid: the (t, h, w) grid the blocks are drawn on (V-JEPA: the token grid).
        num_blocks: blocks per mask (V-JEPA 2: 8 short-range, 2 long-range).
        spatial_scale: a block's area as a fraction of h * w, in (0, 1].
        aspect_ratio: (low, high) range of a block's height / width, low <= high, both > 0.
        temporal_scale: a block's span as a fraction of t, in (0, 1] (1.0: every t).
    """

    def __init__(
        self,
        grid: Sequence[int],
        num_blocks: int,
        spatial_scale: float,
        aspect_ratio: Tuple[float, float] = (0.75, 1.5),
        temporal_scale: float = 1.0,
    ) -> None:
        self.grid = check_grid(grid)
        low, high = aspect_ratio
        if num_blocks < 1:
            raise ValueError(f"MASK.MULTIBLOCK_NUM_BLOCKS must be at least 1 per set, got {num_blocks}")
        if not 0.0 < spatial_scale <= 1.0:
            raise ValueError(f"MASK.MULTIBLOCK_SPATIAL_SCALE must lie in (0, 1], got {spatial_scale}")
        if not 0.0 < temporal_scale <= 1.0:
            raise ValueError(f"MASK.MULTIBLOCK_TEMPORAL_SCALE must lie in (0, 1], got {temporal_scale}")
        if not 0.0 < low <= high:
            raise ValueError(f"MASK.MULTIBLOCK_ASPECT_RATIO must be [low, high] with 0 < low <= high, got {[low, high]}")
        self.num_blocks = int(num_blocks)
        self.spatial_scale = float(spatial_scale)
        self.aspect_ratio = (float(low), float(high))
        self.temporal_scale = float(temporal_scale)

    def __repr__(self) -> str:
        return (
            f"MultiBlockMask(grid={self.grid}, num_blocks={self.num_blocks}, spatial_scale={self.spatial_scale}, "
            f"aspect_ratio={self.aspect_ratio}, temporal_scale={self.temporal_scale})"
        )

    def block_shape(self, generator: torch.Generator) -> Grid:
        """A block's (span, height, width) in grid units, drawn through `generator`."""
        t, h, w = self.grid
        low, high = self.aspect_ratio
        ratio = low + float(torch.rand(1, generator=generator, dtype=torch.float64)) * (high - low)
        area = max(1, int(h * w * self.spatial_scale))
        height = min(h, max(1, round(math.sqrt(area * ratio))))
        width = min(w, max(1, round(math.sqrt(area / ratio))))
        span = max(1, int(t * self.temporal_scale))
        return span, height, width

    def _draw(self, generator: torch.Generator) -> Tensor:
        """One draw: the union of the blocks, bool (t, h, w)."""
        shape = torch.tensor(self.block_shape(generator))
        room = torch.tensor(self.grid) - shape + 1  # (3,) places a block's corner can take per axis
        unit = torch.rand(self.num_blocks, 3, generator=generator, dtype=torch.float64)
        corners = (unit * room).long().tolist()
        mask = torch.zeros(self.grid, dtype=torch.bool)
        span, height, width = shape.tolist()
        for front, top, left in corners:
            mask[front : front + span, top : top + height, left : left + width] = True
        return mask

    def __call__(self, generator: torch.Generator) -> Tensor:
        """A mask, bool (t, h, w), True = in a block; random only through `generator`.
        A draw whose blocks cover every unit is redrawn (the context would be empty)."""
        for _ in range(MAX_DRAWS):
            mask = self._draw(generator)
            if not mask.all():
                return mask
        raise ValueError(
            f"{self!r} covered the whole grid in {MAX_DRAWS} draws, leaving no context: lower "
            "MASK.MULTIBLOCK_SPATIAL_SCALE or MASK.MULTIBLOCK_NUM_BLOCKS, or use a finer grid"
        )


def mask_sets(
    grid: Sequence[int],
    num_blocks: Sequence[int],
    spatial_scale: Sequence[float],
    aspect_ratio: Tuple[float, float],
    temporal_scale: Sequence[float],
) -> List[MultiBlockMask]:
    """One MultiBlockMask per entry of the per-set lists, which must be equally long."""
    lengths = {len(num_blocks), len(spatial_scale), len(temporal_scale)}
    if len(lengths) != 1 or not num_blocks:
        raise ValueError(
            "MASK.MULTIBLOCK_NUM_BLOCKS, MULTIBLOCK_SPATIAL_SCALE and MULTIBLOCK_TEMPORAL_SCALE need one entry per "
            f"mask set each, got {list(num_blocks)}, {list(spatial_scale)}, {list(temporal_scale)}"
        )
    if len(aspect_ratio) != 2:
        raise ValueError(f"MASK.MULTIBLOCK_ASPECT_RATIO must be [low, high], got {list(aspect_ratio)}")
    return [
        MultiBlockMask(grid, blocks, scale, tuple(aspect_ratio), span)
        for blocks, scale, span in zip(num_blocks, spatial_scale, temporal_scale)
    ]


def build_mask_sets(cfg: CfgNode, grid: Sequence[int]) -> List[MultiBlockMask]:
    """The mask sets MASK.MULTIBLOCK_* describe (one entry per set) on `grid`; V-JEPA 2's
    defaults: 8 blocks at 0.15 and 2 blocks at 0.7, aspect 0.75-1.5, full temporal extent."""
    mask = cfg.MASK
    return mask_sets(
        grid,
        mask.MULTIBLOCK_NUM_BLOCKS,
        mask.MULTIBLOCK_SPATIAL_SCALE,
        tuple(mask.MULTIBLOCK_ASPECT_RATIO),
        mask.MULTIBLOCK_TEMPORAL_SCALE,
    )


@MASK_REGISTRY.register(name="multiblock")
class MultiBlockUnionMask:
    """AUG.MASK_TYPE "multiblock" for the methods that take one mask per clip (MaskFeat,
    MAE, ...): bool (t, h, w), True = masked, the union of one draw of every set.

    The masked fraction follows from the sets (V-JEPA 2's two sets on a 14x14 grid hide
    about 85-90 %), not from AUG.MASK_RATIO, which this mask ignores (a WARNING when set).
    Its counts differ between clips; the sparse encoders even them out per batch
    (`equal_count_indices`).

    Args:
        sets: the mask sets, all on one grid.
    """

    # The builder neither checks nor passes AUG.MASK_RATIO to a mask that declares this False.
    uses_mask_ratio = False

    def __init__(self, sets: Sequence[MultiBlockMask]) -> None:
        if not sets or len({mask_set.grid for mask_set in sets}) != 1:
            raise ValueError(f"a multi-block mask needs one or more sets on one grid, got {list(sets)}")
        self.sets = list(sets)
        self.grid = self.sets[0].grid

    @classmethod
    def from_config(cls, cfg: CfgNode, grid: Grid, mask_ratio: float) -> "MultiBlockUnionMask":
        """The sets of `build_mask_sets` on `grid`; a set `mask_ratio` (AUG.MASK_RATIO) is
        ignored with a WARNING."""
        if mask_ratio:
            logger.warning(
                "AUG.MASK_RATIO %s is ignored by AUG.MASK_TYPE 'multiblock': the blocks of MASK.MULTIBLOCK_* decide "
                "what is masked; set AUG.MASK_RATIO 0.0",
                mask_ratio,
            )
        return cls(build_mask_sets(cfg, grid))

    def __repr__(self) -> str:
        return f"MultiBlockUnionMask({self.sets})"

    def __call__(self, generator: torch.Generator) -> Tensor:
        """A fresh mask, bool (t, h, w); random only through `generator`, the sets drawn in
        order, redrawn while their union hides every unit."""
        for _ in range(MAX_DRAWS):
            union = torch.zeros(self.grid, dtype=torch.bool)
            for mask_set in self.sets:
                union |= mask_set(generator)
            if not union.all():
                return union
        raise ValueError(
            f"the union of {self!r} hid every unit in {MAX_DRAWS} draws: lower MASK.MULTIBLOCK_SPATIAL_SCALE "
            "or MASK.MULTIBLOCK_NUM_BLOCKS"
        )


def equal_count_indices(masks: Tensor) -> Tuple[Tensor, Tensor]:
    """Context and predicted positions with the same counts in every item of a batch.

    Args:
        masks: (B, t, h, w) or (B, N) bool, True = masked (predicted).
    Returns:
        context (B, Nc) and predicted (B, Nt) int64 positions in the flattened (t, h, w)
        order, increasing; Nc and Nt are the batch's smallest visible and masked counts.
        Each item keeps its first Nc visible and first Nt masked positions; the others
        (its last ones in (t, h, w) order) are neither context nor predicted, as in
        vjepa2's collator.
    """
    flat = masks.flatten(1).bool()  # (B, N)
    if not flat.any(dim=1).all():
        raise ValueError("a mask of the batch hides no token: every item needs at least one predicted token")
    return context_indices(flat), context_indices(~flat)


def random_equal_count_indices(masks: Tensor, generator: torch.Generator) -> Tuple[Tensor, Tensor]:
    """`equal_count_indices`, but each item keeps Nc of its visible and Nt of its masked
    positions drawn uniformly with `generator` (CPU), not its first ones: (B, Nc), (B, Nt)
    int64, increasing."""
    flat = masks.flatten(1).bool()  # (B, N)
    if not flat.any(dim=1).all():
        raise ValueError("a mask of the batch hides no token: every item needs at least one predicted token")
    return _random_positions(flat, generator), _random_positions(~flat, generator)


def _random_positions(masks: Tensor, generator: torch.Generator) -> Tensor:
    """(B, N) bool, True = masked -> (B, Nc) int64 positions of visible tokens, a uniform
    draw of each item's, increasing; Nc the batch's smallest visible count."""
    num_context = int((~masks).sum(dim=1).min())
    if num_context == 0:
        raise ValueError("the mask hides every token; the encoder needs at least one visible token per item")
    # Visible positions get keys in [0, 1), masked ones in [2, 3): the Nc smallest are visible.
    keys = torch.rand(masks.shape, generator=generator) + 2.0 * masks.cpu().float()
    return keys.argsort(dim=1)[:, :num_context].sort(dim=1).values.to(masks.device)


def context_indices(masks: Tensor) -> Tensor:
    """(B, t, h, w) or (B, N) bool, True = masked -> (B, Nc) int64 positions of visible
    tokens, increasing, Nc the batch's smallest visible count: each item keeps its first Nc
    (`equal_count_indices`). ValueError when an item has no visible token."""
    flat = masks.flatten(1).bool()  # (B, N)
    num_context = int((~flat).sum(dim=1).min())
    if num_context == 0:
        raise ValueError("the mask hides every token; the encoder needs at least one visible token per item")
    # A stable sort of the 0/1 flags puts an item's visible positions first, in order.
    return torch.argsort(flat.to(torch.int8), dim=1, stable=True)[:, :num_context]
