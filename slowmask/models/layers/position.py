"""Absolute position embeddings of MViT/ViT: fixed sine-cosine tables, learned tables
(one joint table, or spatial + temporal + class as MVIT.SEP_POS_EMBED has them) for the
encoder and for MAE's decoder, and resizing of learned tables to another token grid."""

from functools import partial
from typing import Callable, Dict, Mapping, Optional, Sequence

import torch
from torch import Tensor, nn

from slowmask.checkpoint.geometry import resize_pos_embed
from slowmask.geometry import Grid

SINCOS_BASE = 10000.0


def sincos_1d(dim: int, positions: Tensor) -> Tensor:
    """(N,) positions -> (N, dim): [sin(p * w_i), cos(p * w_i)], w_i = base^(-i / (dim/2))."""
    if dim % 2:
        raise ValueError(f"a sine-cosine embedding needs an even width, got {dim}")
    omega = torch.arange(dim // 2, dtype=torch.float64) / (dim / 2)
    omega = 1.0 / SINCOS_BASE**omega
    angles = positions.to(torch.float64)[:, None] * omega[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()


def sincos_3d(dim: int, grid: Grid) -> Tensor:
    """(t*h*w, dim) fixed embedding in (t, h, w) order.

    A quarter of the width encodes time, the rest space; the spatial part is the
    w-coordinate's embedding followed by the h-coordinate's (PySlowFast's layout).
    """
    if dim % 4 or (dim // 4 * 3) % 4:
        raise ValueError(f"a 3-D sine-cosine embedding needs a width divisible by 16, got {dim}")
    t, h, w = grid
    dim_t, dim_s = dim // 4, dim // 4 * 3
    tt, hh, ww = torch.meshgrid(torch.arange(t), torch.arange(h), torch.arange(w), indexing="ij")
    return torch.cat(
        [
            sincos_1d(dim_t, tt.flatten()),
            sincos_1d(dim_s // 2, ww.flatten()),
            sincos_1d(dim_s // 2, hh.flatten()),
        ],
        dim=1,
    )


def sincos_3d_vjepa(dim: int, grid: Grid, uniform_power: bool = False) -> Tensor:
    """(t*h*w, dim) fixed embedding in (t, h, w) order, V-JEPA's layout (Bardes et al., 2024;
    its `get_3d_sincos_pos_embed`): the time coordinate's embedding, then height's, then
    width's. Widths: half for time and a quarter each for height and width, or with
    `uniform_power` 2 * ceil(dim / 6) each, the table cut to `dim` (its video recipes)."""
    if uniform_power:
        widths = (2 * -(-dim // 6),) * 3
    else:
        widths = (dim // 2, dim // 4, dim // 4)
    if any(width % 2 for width in widths) or sum(widths) < dim:
        raise ValueError(f"V-JEPA's 3-D sine-cosine embedding needs a width divisible by 8, got {dim}")
    t, h, w = grid
    tt, hh, ww = torch.meshgrid(torch.arange(t), torch.arange(h), torch.arange(w), indexing="ij")
    parts = [sincos_1d(width, axis.flatten()) for width, axis in zip(widths, (tt, hh, ww))]
    return torch.cat(parts, dim=1)[:, :dim]


# MVIT.SINCOS_LAYOUT values: (dim, grid) -> (t*h*w, dim) fixed tables.
SINCOS_LAYOUTS: Dict[str, Callable[[int, Grid], Tensor]] = {
    "pyslowfast": sincos_3d,
    "vjepa": sincos_3d_vjepa,
    "vjepa_uniform": partial(sincos_3d_vjepa, uniform_power=True),
}


def sincos_table(layout: str, dim: int, grid: Grid) -> Tensor:
    """The fixed (t*h*w, dim) table of a SINCOS_LAYOUTS name; ValueError naming the choices."""
    if layout not in SINCOS_LAYOUTS:
        raise ValueError(f"MVIT.SINCOS_LAYOUT {layout!r} is not known; use one of {', '.join(map(repr, SINCOS_LAYOUTS))}")
    return SINCOS_LAYOUTS[layout](dim, grid)


def learned_tables(grid: Grid, dim: int, num_prefix: int, separate: bool, std: float) -> Dict[str, Optional[nn.Parameter]]:
    """Learned position tables for the token `grid`, truncated-normal initialized:
    {"joint": (1, num_prefix + t*h*w, dim)} or, `separate`, {"spatial": (1, h*w, dim),
    "temporal": (1, t, dim), "class": (1, 1, dim), or None without a class token}.
    The owner registers them under its PySlowFast parameter names."""
    t, h, w = grid
    if separate:
        tables = {
            "spatial": nn.Parameter(torch.zeros(1, h * w, dim)),
            "temporal": nn.Parameter(torch.zeros(1, t, dim)),
            "class": nn.Parameter(torch.zeros(1, 1, dim)) if num_prefix else None,
        }
    else:
        tables = {"joint": nn.Parameter(torch.zeros(1, num_prefix + t * h * w, dim))}
    for table in tables.values():
        if table is not None:
            nn.init.trunc_normal_(table, std=std)
    return tables


def positions_on_grid(
    tables: Mapping[str, Optional[Tensor]], table_grid: Grid, grid: Grid, num_prefix: int
) -> Tensor:
    """(1, [num_prefix +] t*h*w, D) positions for `grid` from `learned_tables`' tables
    laid out for `table_grid`: the grid part resized, after the class token's position."""
    if "joint" in tables:
        joint = tables["joint"]
        grid_pos, prefix_pos = joint[:, num_prefix:], joint[:, :num_prefix]
    else:
        t, h, w = table_grid
        spatial = tables["spatial"].repeat(1, t, 1)
        temporal = tables["temporal"].repeat_interleave(h * w, dim=1)
        grid_pos, prefix_pos = spatial + temporal, tables["class"]
    grid_pos = pos_embed_for_input(grid_pos, table_grid, grid)
    return grid_pos if prefix_pos is None else torch.cat((prefix_pos, grid_pos), dim=1)


def pos_embed_for_input(pos_embed: Tensor, table_grid: Sequence[int], input_grid: Sequence[int]) -> Tensor:
    """(1, t*h*w, D) table for `table_grid` -> the positions of an input's token grid.

    An input of one temporal slice (an image in a video model) takes the table's first
    temporal slice, resized in space: OmniMAE embeds images with the positions of frame
    0 (Girdhar et al., 2023; omnivore's `interpolate_pos_encoding`), where a trilinear
    resize would blend the middle frames' positions. Other grids resize trilinearly.
    """
    t, h, w = table_grid
    if input_grid[0] == 1 and t > 1:
        first_slice = pos_embed.reshape(1, t, h * w, pos_embed.shape[-1])[:, 0]
        return resize_pos_embed(first_slice, (1, h, w), input_grid)
    return resize_pos_embed(pos_embed, table_grid, input_grid)
