"""Mask generators (MASK registry): bool (t, h, w) masks on the mask grid, True = masked.

`build_mask_generator(cfg)` builds the generator AUG.MASK_TYPE names; the generators
(uniform.py: random, tube, frame; cube.py: cube, block, frame_block; running_cell.py:
VideoMAE V2's decoder mask; multiblock.py: V-JEPA's mask sets and their union, and the
equal token counts a batch needs) take plain arguments, and grids.py moves a mask from
its grid to the model's token grids.
"""

from .build import MASK_REGISTRY, MaskGenerator, build_decoder_mask_generator, build_mask_generator, mask_type
from .cube import CubeMaskGenerator, FrameBlockMaskGenerator
from .grids import upsample_mask
from .multiblock import (
    MultiBlockMask,
    MultiBlockUnionMask,
    build_mask_sets,
    context_indices,
    equal_count_indices,
    random_equal_count_indices,
)
from .running_cell import RunningCellMaskGenerator
from .uniform import FrameMaskGenerator, RandomMaskGenerator, TubeMaskGenerator, UniformMaskGenerator

__all__ = [
    "CubeMaskGenerator",
    "FrameBlockMaskGenerator",
    "FrameMaskGenerator",
    "MASK_REGISTRY",
    "MaskGenerator",
    "MultiBlockMask",
    "MultiBlockUnionMask",
    "RandomMaskGenerator",
    "RunningCellMaskGenerator",
    "TubeMaskGenerator",
    "UniformMaskGenerator",
    "build_decoder_mask_generator",
    "build_mask_generator",
    "build_mask_sets",
    "context_indices",
    "equal_count_indices",
    "mask_type",
    "random_equal_count_indices",
    "upsample_mask",
]
