"""Building the mask generator the config names: the MASK registry and its builder, the
only masking code that reads cfg besides the generators' `from_config`."""

import logging
from typing import Callable, Optional, Tuple

import torch
from fvcore.common.config import CfgNode
from torch import Tensor

from slowmask.geometry import TokenGeometry
from slowmask.utils.registry import Registry

from .grids import Grid, check_grid, check_mask_ratio

logger = logging.getLogger(__name__)

# A generator -> bool (t, h, w) mask, True = masked.
MaskGenerator = Callable[[torch.Generator], Tensor]

MASK_REGISTRY = Registry("MASK", "mask generator")
MASK_REGISTRY.__doc__ = """Mask generators, by the name AUG.MASK_TYPE gives.

Every entry is a class built as `cls.from_config(cfg, grid=grid, mask_ratio=mask_ratio)`
(context: `grid`, (t, h, w) the mask grid, and `mask_ratio`, a float in (0, 1), both
checked by the builder); `from_config` adds the class's own keywords from the config.
A class whose masked fraction does not come from the ratio (multiblock) sets the class
attribute `uses_mask_ratio = False`: its `mask_ratio` is AUG.MASK_RATIO unchecked.
Calling the instance with a `torch.Generator` returns a bool tensor of shape (t, h, w),
True = masked, random only through that generator.
"""


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
    ratio = cfg.AUG.MASK_RATIO
    if getattr(MASK_REGISTRY.get(name, source), "uses_mask_ratio", True):
        check_mask_ratio(ratio, "AUG.MASK_RATIO")
    grid = tuple(cfg.AUG.MASK_WINDOW_SIZE)
    if source.endswith("MASK.MAE_RND_MASK True"):
        grid = _token_grid(cfg)
        logger.info("MASK.MAE_RND_MASK: random masks of single tokens, on the token grid %s", grid)
    elif cfg.MVIT.PATCH_2D and grid[:1] != (1,):
        # PySlowFast's image path ignores AUG.MASK_WINDOW_SIZE (its default is a video grid)
        # and masks the token grid; its image yaml files keep that default.
        grid = _token_grid(cfg)
        logger.info("images (MVIT.PATCH_2D) with AUG.MASK_WINDOW_SIZE t != 1: masks on the token grid %s", grid)
    return MASK_REGISTRY.build(name, cfg, source, grid=check_grid(grid, "AUG.MASK_WINDOW_SIZE"), mask_ratio=ratio)


def _token_grid(cfg: CfgNode) -> Grid:
    """The patch embedding's token grid. PySlowFast masks this grid, whatever
    AUG.MASK_WINDOW_SIZE says, with MASK.MAE_RND_MASK and for images, so its yaml files
    mask the same here."""
    return TokenGeometry.from_config(cfg).token_grid


def build_decoder_mask_generator(cfg: CfgNode, grid: Grid) -> Optional[MaskGenerator]:
    """VideoMAE V2's decoder mask (dual masking): the generator MASK.DECODER_MASK_TYPE names,
    on the token `grid` at MASK.DECODER_MASK_RATIO; None when the type is "" (a decoder
    that reconstructs every masked token)."""
    name = cfg.MASK.DECODER_MASK_TYPE
    if not name:
        return None
    ratio = check_mask_ratio(cfg.MASK.DECODER_MASK_RATIO, "MASK.DECODER_MASK_RATIO")
    grid = check_grid(tuple(grid), "the token grid")
    return MASK_REGISTRY.build(name, cfg, "MASK.DECODER_MASK_TYPE", grid=grid, mask_ratio=ratio)
