"""Uniform masks: an exact number of units drawn uniformly, on the whole grid (random), on
one frame repeated over time (tube), or as whole temporal slices (frame).

- random: MAE's random masking (He et al., 2022, Sec. 3; Feichtenhofer et al., 2022,
  Sec. 3). With a mask grid coarser than the token grid it is SimMIM's random masking of
  32x32 mask units over 16x16 patches (Xie et al., 2022, Sec. 3.1).
- tube: VideoMAE's tube masking (Tong et al., 2022, Sec. 3.3). Neighbouring frames are
  nearly copies of each other, so a patch masked in one frame but visible in the next
  would be solved by copying; a tube hides the same place in every frame.
- frame: PySlowFast's AUG.MASK_FRAMES. The model predicts a missing frame from the frames
  around it (temporal interpolation) rather than a missing region from its surroundings.
"""

import abc
import math
from typing import Sequence

import torch
from fvcore.common.config import CfgNode
from torch import Tensor

from .build import MASK_REGISTRY
from .grids import Grid, check_grid, check_mask_ratio, masked_count


def exact_random_mask(shape: Sequence[int], count: int, generator: torch.Generator) -> Tensor:
    """bool `shape`, True = masked, with exactly `count` units masked, every subset of
    that size equally likely."""
    order = torch.randperm(math.prod(shape), generator=generator)
    mask = torch.zeros(math.prod(shape), dtype=torch.bool)
    mask[order[:count]] = True
    return mask.view(*shape)


class UniformMaskGenerator(abc.ABC):
    """bool (t, h, w), True = masked: exactly `num_masked` units of the drawn shape (the
    subclass's `drawn_shape` of the grid) chosen uniformly without replacement, broadcast
    over the rest of the grid.

    Args:
        grid: mask grid (t, h, w).
        mask_ratio: fraction of the drawn units to mask, in (0, 1).
    """

    # What the drawn units are, for the error when the ratio rounds to none or all of them.
    units = "mask units"

    def __init__(self, grid: Sequence[int], mask_ratio: float) -> None:
        self.grid = check_grid(grid)
        check_mask_ratio(mask_ratio)
        self.num_masked = masked_count(mask_ratio, math.prod(self.drawn_shape), self.units)

    @classmethod
    def from_config(cls, cfg: CfgNode, grid: Grid, mask_ratio: float) -> "UniformMaskGenerator":
        """The registry's builder: a uniform mask takes nothing from the config but its grid and ratio."""
        return cls(grid, mask_ratio)

    @property
    @abc.abstractmethod
    def drawn_shape(self) -> Grid:
        """The (t, h, w) shape whose units are drawn; 1 on the axes the mask is repeated along."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(grid={self.grid}, num_masked={self.num_masked} of {self.drawn_shape})"

    def __call__(self, generator: torch.Generator) -> Tensor:
        """A fresh mask, bool (t, h, w); random only through `generator`."""
        drawn = exact_random_mask(self.drawn_shape, self.num_masked, generator)
        return drawn.expand(self.grid).clone()


@MASK_REGISTRY.register(name="random")
class RandomMaskGenerator(UniformMaskGenerator):
    """Exactly round(mask_ratio * t * h * w) units drawn uniformly."""

    @property
    def drawn_shape(self) -> Grid:
        return self.grid


@MASK_REGISTRY.register(name="tube")
class TubeMaskGenerator(UniformMaskGenerator):
    """Exactly round(mask_ratio * h * w) spatial units drawn uniformly, masked at every t
    (so the masked fraction is the same per frame)."""

    units = "spatial mask units"

    @property
    def drawn_shape(self) -> Grid:
        _, h, w = self.grid
        return (1, h, w)


@MASK_REGISTRY.register(name="frame")
class FrameMaskGenerator(UniformMaskGenerator):
    """Exactly round(mask_ratio * t) temporal indices drawn uniformly, each masked over its
    whole (h, w) slice; t must be at least 2 (one masked, one visible slice)."""

    units = "temporal slices (frame masks need t >= 2)"

    @property
    def drawn_shape(self) -> Grid:
        return (self.grid[0], 1, 1)
