"""3-D rotary position embeddings (RoPE; Su et al., 2021) in ViT attention, as V-JEPA 2
uses them (Assran et al., 2025, Sec. 2: "3D-RoPE"): the position enters q and k as a
rotation instead of a table added to the tokens, so a sparse encoder needs no table
and a grid larger than the pretraining one needs no interpolation.

Each head's width is split into three equal even parts, 2 * ((head_dim // 3) // 2)
channels each, turned by the token's time, height and width index in that order; the
channels left over (head_dim mod 6 at most) are not turned. Within a part of 2k
channels the angle of channel c is coordinate * omega, omega = 10000^(-j / k):

- `exact=False`, V-JEPA 2's layout (its code and its published weights): channel c
  takes omega[c mod k], while the channels turned together are the pairs (2i, 2i + 1);
  the two channels of a pair turn at neighbouring frequencies, so q . k also depends a
  little on the absolute positions.
- `exact=True`: both channels of pair i take omega[i], a rotation, so q . k depends on
  the positions' difference only (RoFormer's property).

A token's coordinates come from its index in the (t, h, w) grid, flattened in that order.
Prefix tokens (a class token) are not turned.
"""

from typing import Optional, Sequence

import torch
from torch import Tensor

from slowmask.geometry import Grid

from .layout import NO_POOL, BlockLayout

ROPE_BASE = 10000.0


def axis_width(head_dim: int) -> int:
    """Channels turned per axis (time, height, width): the largest even number <= head_dim / 3."""
    return 2 * ((head_dim // 3) // 2)


def check_rope_layout(layout: Sequence[BlockLayout], rel_pos: bool) -> None:
    """ValueError unless the blocks are a ViT's: rotary positions follow tokens on a fixed
    grid, which pooled attention changes and relative positions duplicate."""
    pooled = [i for i, spec in enumerate(layout) if spec.kernel_q != NO_POOL or spec.kernel_kv != NO_POOL]
    if pooled or rel_pos:
        raise ValueError(
            f"MVIT.USE_ROPE needs a ViT: no attention pooling (blocks {pooled} pool; set MVIT.POOL_Q_STRIDE, "
            "POOL_KV_STRIDE [] and POOL_KV_STRIDE_ADAPTIVE None) and no relative positions (MVIT.REL_POS_* False)"
        )
    if axis_width(layout[0].dim // layout[0].num_heads) == 0:
        raise ValueError(f"MVIT.USE_ROPE needs a head width of at least 6 channels, got {layout[0].dim // layout[0].num_heads}")


def grid_coordinates(index: Tensor, grid: Grid) -> Tensor:
    """(..., N) int64 indices into the flattened (t, h, w) grid -> (..., N, 3) float32
    (time, height, width) coordinates."""
    _, h, w = grid
    return torch.stack((index // (h * w), (index // w) % h, index % w), dim=-1).float()


def _frequencies(width: int, exact: bool, dtype: torch.dtype, device: torch.device) -> Tensor:
    """(width,) angle per unit of coordinate for each channel of an axis's part."""
    half = width // 2
    omega = 1.0 / ROPE_BASE ** (torch.arange(half, dtype=dtype, device=device) / half)
    return omega.repeat_interleave(2) if exact else omega.repeat(2)


def _turn(x: Tensor, coordinate: Tensor, exact: bool) -> Tensor:
    """Turn (B, heads, N, width) channels by (B | 1, N) coordinates: channel pairs
    (2i, 2i + 1) -> (a cos - b sin, b cos + a sin), each channel at its own angle."""
    dtype = torch.promote_types(x.dtype, torch.float32)  # angles in float32 at least
    frequencies = _frequencies(x.shape[-1], exact, dtype, x.device)
    angle = (coordinate.to(dtype)[..., None] * frequencies)[:, None]  # (B | 1, 1, N, width)
    pairs = x.unflatten(-1, (-1, 2))
    swapped = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
    return (x.to(dtype) * angle.cos() + swapped.to(dtype) * angle.sin()).to(x.dtype)


def apply_rope(x: Tensor, coordinates: Tensor, num_prefix: int = 0, exact: bool = False) -> Tensor:
    """Rotary positions on queries or keys.

    Args:
        x: (B, heads, [num_prefix +] N, head_dim) queries or keys.
        coordinates: (B | 1, N, 3) (time, height, width) of the N grid tokens (`grid_coordinates`).
        num_prefix: leading tokens (class token) left as they are.
        exact: a true rotation per channel pair (module docstring); False is V-JEPA 2's layout.
    Returns:
        x turned, same shape and dtype (angles computed in float32 at least).
    """
    width = axis_width(x.shape[-1])
    prefix, tokens = x[:, :, :num_prefix], x[:, :, num_prefix:]
    parts = [_turn(tokens[..., axis * width : (axis + 1) * width], coordinates[..., axis], exact) for axis in range(3)]
    parts.append(tokens[..., 3 * width :])
    return torch.cat((prefix, torch.cat(parts, dim=-1)), dim=2)


def token_coordinates(grid: Grid, positions: Optional[Tensor], device: torch.device) -> Tensor:
    """(B | 1, N, 3) coordinates of the tokens a block sees: those at `positions` (B, N)
    (indices into the flattened grid, e.g. the visible tokens of a sparse encoder), or
    every token of `grid` in order when None."""
    if positions is None:
        t, h, w = grid
        positions = torch.arange(t * h * w, device=device)[None]
    return grid_coordinates(positions, grid)
