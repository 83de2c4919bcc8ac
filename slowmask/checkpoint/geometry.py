"""Fitting a checkpoint's tensors to a model of another geometry (fine-tuning at another
crop size or frame count, or a video model initialized from an image model).

Three kinds of tensor change shape with the input grid, and each has its rule:

- absolute position embeddings (`pos_embed` (1, [1+]t*h*w, D), `pos_embed_spatial`
  (1, h*w, D), `pos_embed_temporal` (1, t, D)): trilinear interpolation over the grid;
- MViTv2's decomposed relative position tables (`rel_pos_h/w/t` (L, C)): linear
  interpolation over L;
- convolution kernels with a time axis (`patch_embed.proj.weight`, `attn.pool_q/k/v.weight`):
  a 2-D or one-frame kernel is inflated by central-frame initialization (ViViT, Arnab et
  al. 2021, sec. 3.4: the 2-D kernel in the middle frame, zeros elsewhere), so a clip of
  identical frames gives every frame the image model's features.

`adapt(name, value, target_shape, grid, num_prefix)` picks the rule by the parameter's
name (ADAPTERS) and returns the fitted tensor, or raises ValueError when no rule fits.

The two interpolations (`resize_pos_embed`, `resize_table`) are also the models' own:
a model that meets an input of another grid than its tables resizes them the same way
at run time (models/position.py, models/relative_position.py), so a table fitted here
equals the one the model would compute.
"""

import math
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from slowmask.geometry import Grid

Shape = Tuple[int, ...]


def resize_pos_embed(pos_embed: Tensor, from_grid: Sequence[int], to_grid: Sequence[int]) -> Tensor:
    """(1, t*h*w, D) table for `from_grid` -> (1, t'*h'*w', D) by trilinear interpolation."""
    if tuple(from_grid) == tuple(to_grid):
        return pos_embed
    dim = pos_embed.shape[-1]
    volume = pos_embed.reshape(1, *from_grid, dim).permute(0, 4, 1, 2, 3)
    volume = F.interpolate(volume, size=tuple(to_grid), mode="trilinear", align_corners=False)
    return volume.reshape(1, dim, math.prod(to_grid)).transpose(1, 2)


def resize_table(table: Tensor, length: int) -> Tensor:
    """(L, C) -> (length, C) by linear interpolation over L (a different input grid)."""
    if table.shape[0] == length:
        return table
    resized = F.interpolate(table.t().unsqueeze(0), size=length, mode="linear")
    return resized.squeeze(0).t()


def infer_grid(num_tokens: int, like: Grid) -> Grid:
    """The (t, h, w) grid of a checkpoint's `num_tokens` position entries, for a model of
    grid `like`: the model's grid, or its spatial grid with one frame (an image
    checkpoint), when the count fits; else a square spatial grid (every published
    recipe's) with the model's frame count, or with one frame.
    """
    t, h, w = like
    if num_tokens == t * h * w:
        return tuple(like)
    if num_tokens == h * w:
        return 1, h, w
    for frames in dict.fromkeys((t, 1)):
        side = math.isqrt(num_tokens // frames)
        if num_tokens % frames == 0 and side * side * frames == num_tokens:
            return frames, side, side
    raise ValueError(
        f"cannot tell the token grid of a position table with {num_tokens} entries "
        f"(expected t*h*h with t = {t} or 1)"
    )


def _split_prefix(num_entries: int, grid: Grid, num_prefix: int) -> Tuple[int, Grid]:
    """(class-token entries, grid) of a checkpoint's joint table of `num_entries` rows."""
    for prefix in dict.fromkeys((num_prefix, 1, 0)):
        try:
            return prefix, infer_grid(num_entries - prefix, grid)
        except ValueError:
            continue
    raise ValueError(f"cannot tell the token grid of a position table with {num_entries} entries")


def resize_joint_pos_embed(table: Tensor, target_shape: Shape, grid: Grid, num_prefix: int) -> Tensor:
    """`pos_embed` (1, p + t*h*w, D) of the checkpoint -> (1, p' + t'*h'*w', D) for `grid`.

    The class-token entry is kept when both have one, dropped, or zero-filled when only
    the model has one.
    """
    from_prefix, from_grid = _split_prefix(table.shape[1], grid, num_prefix)
    resized = resize_pos_embed(table[:, from_prefix:], from_grid, grid)
    prefix = table[:, :from_prefix][:, :num_prefix]
    if prefix.shape[1] < num_prefix:
        prefix = table.new_zeros(1, num_prefix, table.shape[2])
    return _checked(torch.cat((prefix, resized), dim=1), target_shape)


def resize_spatial_pos_embed(table: Tensor, target_shape: Shape, grid: Grid, num_prefix: int) -> Tensor:
    """`pos_embed_spatial` (1, h*w, D) -> (1, h'*w', D) (bilinear over a square grid)."""
    _, side, _ = infer_grid(table.shape[1], (1,) + tuple(grid[1:]))
    resized = resize_pos_embed(table, (1, side, side), (1,) + tuple(grid[1:]))
    return _checked(resized, target_shape)


def resize_temporal_pos_embed(table: Tensor, target_shape: Shape, grid: Grid, num_prefix: int) -> Tensor:
    """`pos_embed_temporal` (1, t, D) -> (1, t', D) (linear over time)."""
    resized = resize_pos_embed(table, (table.shape[1], 1, 1), (grid[0], 1, 1))
    return _checked(resized, target_shape)


def resize_rel_pos_table(table: Tensor, target_shape: Shape, grid: Grid, num_prefix: int) -> Tensor:
    """`rel_pos_*` (L, C) -> (L', C) (linear over the offsets)."""
    if table.ndim != 2 or table.shape[1] != target_shape[1]:
        raise ValueError(f"relative position table {tuple(table.shape)} cannot become {tuple(target_shape)}")
    return resize_table(table, target_shape[0])


def inflate_kernel(weight: Tensor, frames: int) -> Tensor:
    """(O, I, kh, kw) or (O, I, 1, kh, kw) 2-D kernel -> (O, I, frames, kh, kw): the kernel
    in the central frame `frames // 2`, zeros elsewhere (central-frame initialization)."""
    if weight.ndim == 4:
        weight = weight.unsqueeze(2)
    if weight.ndim != 5 or weight.shape[2] != 1:
        raise ValueError(f"only a 2-D or one-frame kernel inflates, got shape {tuple(weight.shape)}")
    inflated = weight.new_zeros(*weight.shape[:2], frames, *weight.shape[3:])
    inflated[:, :, frames // 2] = weight[:, :, 0]
    return inflated


def fit_kernel(weight: Tensor, target_shape: Shape, grid: Grid, num_prefix: int) -> Tensor:
    """A convolution kernel into `target_shape`: 2-D -> 3-D by inflation, 3-D -> 2-D by
    summing over time (the same response to a static clip)."""
    if len(target_shape) == 5:
        fitted = inflate_kernel(weight, target_shape[2])
    elif len(target_shape) == 4 and weight.ndim == 5:
        fitted = weight.sum(dim=2)
    else:
        fitted = weight
    return _checked(fitted, target_shape)


def _checked(value: Tensor, target_shape: Shape) -> Tensor:
    if tuple(value.shape) != tuple(target_shape):
        raise ValueError(f"fitted to {tuple(value.shape)}, the model needs {tuple(target_shape)}")
    return value


Adapter = Callable[[Tensor, Shape, Grid, int], Tensor]

# Last component(s) of a parameter name -> how it follows the geometry.
ADAPTERS: Dict[str, Adapter] = {
    "pos_embed": resize_joint_pos_embed,
    "pos_embed_spatial": resize_spatial_pos_embed,
    "pos_embed_temporal": resize_temporal_pos_embed,
    "rel_pos_h": resize_rel_pos_table,
    "rel_pos_w": resize_rel_pos_table,
    "rel_pos_t": resize_rel_pos_table,
    "patch_embed.proj.weight": fit_kernel,
    "attn.pool_q.weight": fit_kernel,
    "attn.pool_k.weight": fit_kernel,
    "attn.pool_v.weight": fit_kernel,
}


def adapter_for(name: str) -> Optional[Adapter]:
    """The rule for parameter `name`, or None when its shape must match as it is."""
    for suffix, adapter in ADAPTERS.items():
        if name == suffix or name.endswith("." + suffix):
            return adapter
    return None


def adapt(name: str, value: Tensor, target_shape: Sequence[int], grid: Grid, num_prefix: int) -> Tensor:
    """`value` of the checkpoint fitted to the model's `target_shape`.

    Args:
        name: the parameter's name (selects the rule).
        grid: the model's token grid (t, h, w) after the patch embedding.
        num_prefix: class tokens in front of the model's grid tokens.
    Raises:
        ValueError: no rule fits (the shapes differ for another reason, e.g. the width).
    """
    if tuple(value.shape) == tuple(target_shape):
        return value
    adapter = adapter_for(name)
    if adapter is None:
        raise ValueError(f"{tuple(value.shape)} does not fit the model's {tuple(target_shape)}")
    with torch.no_grad():
        return adapter(value, tuple(target_shape), tuple(grid), num_prefix).contiguous()
