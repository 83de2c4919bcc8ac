"""The mask grid: the checks every mask generator makes of its grid and ratio, and moving
masks between grids. A mask drawn on the coarse mask grid is upsampled (nearest) to the
token grid (where mask tokens go) and to the prediction grid (which tokens are predicted).

The three grids: the patch embedding gives the token grid (16x224x224 with a 2x4x4
stride: 8x56x56); the prediction grid is the token grid at MASK.PRETRAIN_DEPTH (MViTv2's
pooling brings it to 8x14x14); the mask grid is AUG.MASK_WINDOW_SIZE (MaskFeat MViTv2:
8x7x7, one mask unit per 2x2 prediction tokens), whose sizes divide the other two."""

from typing import Sequence

from torch import Tensor

from slowmask.geometry import Grid, divides



def check_grid(grid: Sequence[int], name: str = "grid") -> Grid:
    """`grid` as a (t, h, w) tuple of ints; ValueError naming `name` (the argument or
    config key it came from) unless it is three positive whole numbers."""
    sizes = tuple(int(size) for size in grid)
    if len(sizes) != 3 or min(sizes) < 1 or sizes != tuple(grid):
        raise ValueError(f"{name} must be three positive sizes (t, h, w), got {list(grid)}")
    return sizes


def check_mask_ratio(mask_ratio: float, name: str = "mask_ratio") -> float:
    """`mask_ratio`, which must lie in (0, 1); ValueError naming `name` otherwise."""
    if not 0.0 < mask_ratio < 1.0:
        raise ValueError(f"{name} must lie in (0, 1), got {mask_ratio}")
    return mask_ratio


def masked_count(ratio: float, units: int, what: str) -> int:
    """round(ratio * units), which must leave at least one unit masked and one visible."""
    count = round(ratio * units)
    if not 0 < count < units:
        raise ValueError(
            f"mask_ratio {ratio} masks {count} of the {units} {what}; at least one must be "
            "masked and one visible"
        )
    return count


def upsample_mask(mask: Tensor, grid: Sequence[int]) -> Tensor:
    """(B, t, h, w) bool mask (True = masked) -> (B, T, H, W) bool on `grid`.

    Every mask unit covers a (T/t, H/h, W/w) block of the finer grid; `grid` must be a
    whole multiple of the mask grid.
    """
    if mask.ndim != 4:
        raise ValueError(f"expected a mask (B, t, h, w), got shape {tuple(mask.shape)}")
    mask_grid = tuple(mask.shape[1:])
    if not divides(mask_grid, grid):
        raise ValueError(
            f"mask grid {mask_grid} (AUG.MASK_WINDOW_SIZE) must divide the grid {tuple(grid)} "
            "it is upsampled to"
        )
    mask = mask.bool()
    for axis, (small, big) in enumerate(zip(mask_grid, grid), start=1):
        if big != small:
            mask = mask.repeat_interleave(big // small, dim=axis)
    return mask
