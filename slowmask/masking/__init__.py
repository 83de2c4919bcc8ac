"""Mask generators (MASK registry): bool (t, h, w) masks on the mask grid, True = masked."""

import inspect
import logging
from typing import Callable, Dict, Optional, Tuple

import torch
from fvcore.common.config import CfgNode
from torch import Tensor

from .cube import CubeMaskGenerator
from .frame import FrameMaskGenerator
from .frame_block import FrameBlockMaskGenerator
from .random import RandomMaskGenerator
from .registry import MASK_REGISTRY
from .running_cell import RunningCellMaskGenerator
from .tube import TubeMaskGenerator

logger = logging.getLogger(__name__)

MaskGenerator = Callable[[torch.Generator], Tensor]

# Keywords some generators take, with the config key each comes from; passed only to a
# generator whose constructor names the keyword, and only when the key is set.
OPTIONAL_KEYWORDS: Dict[str, Tuple[str, str]] = {
    "max_block_area": ("AUG", "MAX_MASK_PATCHES_PER_BLOCK"),
}


def mask_type(cfg: CfgNode) -> Tuple[str, str]:
    """The generator's name and the key it comes from: AUG.MASK_TYPE, or when that is
    "" PySlowFast's flags AUG.MASK_TUBE, AUG.MASK_FRAMES, MASK.MAE_RND_MASK (cube without)."""
    if cfg.AUG.MASK_TYPE:
        return cfg.AUG.MASK_TYPE, "AUG.MASK_TYPE"
    flags = (("AUG.MASK_TUBE", "tube"), ("AUG.MASK_FRAMES", "frame"), ("MASK.MAE_RND_MASK", "random"))
    for key, name in flags:
        node, leaf = key.split(".")
        if cfg[node][leaf]:
            return name, f"AUG.MASK_TYPE '' with {key} True"
    return "cube", "AUG.MASK_TYPE '' (default)"


def build_mask_generator(cfg: CfgNode) -> Optional[MaskGenerator]:
    """The mask generator the config names, called as `generator(torch.Generator)` ->
    bool (t, h, w); None when MASK.ENABLE is False."""
    if not cfg.MASK.ENABLE:
        return None
    name, source = mask_type(cfg)
    if name not in MASK_REGISTRY:
        registered = ", ".join(repr(known) for known, _ in sorted(MASK_REGISTRY))
        raise ValueError(
            f"mask generator {name!r} (from {source}) is not registered; registered: {registered}"
        )
    ratio = cfg.AUG.MASK_RATIO
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"AUG.MASK_RATIO must lie in (0, 1) when MASK.ENABLE is True, got {ratio}")
    grid = tuple(cfg.AUG.MASK_WINDOW_SIZE)
    if source.endswith("MASK.MAE_RND_MASK True"):
        grid = _token_grid(cfg)
        logger.info("MASK.MAE_RND_MASK: random masks of single tokens, on the token grid %s", grid)
    elif cfg.MVIT.PATCH_2D and grid[:1] != (1,):
        # PySlowFast's image path ignores AUG.MASK_WINDOW_SIZE (its default is a video grid)
        # and masks the token grid; its image yaml files keep that default.
        grid = _token_grid(cfg)
        logger.info("images (MVIT.PATCH_2D) with AUG.MASK_WINDOW_SIZE t != 1: masks on the token grid %s", grid)
    if len(grid) != 3 or not all(isinstance(size, int) and size > 0 for size in grid):
        raise ValueError(f"AUG.MASK_WINDOW_SIZE must be three positive integers (t, h, w), got {list(grid)}")
    cls = MASK_REGISTRY.get(name)
    return cls(grid=grid, mask_ratio=ratio, **_optional_kwargs(cls, cfg))


def _token_grid(cfg: CfgNode) -> Tuple[int, int, int]:
    """The patch embedding's token grid: input (T, H, W) over MVIT.PATCH_STRIDE (one frame
    per token with MVIT.PATCH_2D). PySlowFast masks this grid, whatever AUG.MASK_WINDOW_SIZE
    says, with MASK.MAE_RND_MASK and for images, so its yaml files mask the same here."""
    stride = list(cfg.MVIT.PATCH_STRIDE)
    stride = [1] + stride[-2:] if cfg.MVIT.PATCH_2D else stride
    size = (cfg.DATA.NUM_FRAMES, cfg.DATA.TRAIN_CROP_SIZE, cfg.DATA.TRAIN_CROP_SIZE)
    return tuple(length // step for length, step in zip(size, stride))


def _optional_kwargs(cls: type, cfg: CfgNode) -> Dict[str, object]:
    accepted = inspect.signature(cls).parameters
    values = {keyword: cfg[node][leaf] for keyword, (node, leaf) in OPTIONAL_KEYWORDS.items()}
    return {keyword: value for keyword, value in values.items() if keyword in accepted and value is not None}


__all__ = [
    "CubeMaskGenerator",
    "FrameBlockMaskGenerator",
    "FrameMaskGenerator",
    "MASK_REGISTRY",
    "MaskGenerator",
    "RandomMaskGenerator",
    "RunningCellMaskGenerator",
    "TubeMaskGenerator",
    "build_mask_generator",
    "mask_type",
]
