"""MViTv2's decomposed relative position bias (Li et al. 2022, sec. 4.1).

The bias between a query at (t, h, w) and a key at (t', h', w') is
q . (R_t[t - t'] + R_h[h - h'] + R_w[w - w']): three small tables instead of one per
3-D offset; the class token's row and column get zero bias, as in PySlowFast. Two
exact forms:

- `decomposed_bias`: the additive (B, heads, Nq, Nk) term for the attention logits.
- `decomposed_terms` and `key_indicators`: the bias factored as a product. For each
  query, its kt + kh + kw dot products with the table rows (one per key time, row,
  column); for each key, a 0/1 indicator of its time, row and column. Appended to the
  queries and keys, they add exactly the bias to q . k, so attention needs no mask at
  all, and `scaled_dot_product_attention` keeps its fused kernel in training (a mask
  that needs a gradient sends it to the unfused math path).
"""

import math
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from slowmask.checkpoint.geometry import resize_table
from slowmask.geometry import Grid


def table_length(q_size: int, k_size: int) -> int:
    """Entries of a table covering every offset between q_size queries and k_size keys."""
    return 2 * max(q_size, k_size) - 1


def relative_index(q_size: int, k_size: int, device: torch.device) -> Tensor:
    """(q_size, k_size) long indices into a table of `table_length(q_size, k_size)`.

    When queries and keys are pooled differently, both positions are first scaled to
    the finer grid, so that a coarse token sits where it covers the fine grid.
    """
    q_ratio = max(k_size / q_size, 1.0)
    k_ratio = max(q_size / k_size, 1.0)
    q_pos = torch.arange(q_size, device=device)[:, None] * q_ratio
    k_pos = torch.arange(k_size, device=device)[None, :] * k_ratio
    return (q_pos - k_pos + (k_size - 1) * k_ratio).long()


def _lookup(table: Tensor, q_size: int, k_size: int, dtype: torch.dtype) -> Tensor:
    """(q_size, k_size, C): the table row for every query/key offset."""
    table = resize_table(table, table_length(q_size, k_size)).to(dtype)
    return table[relative_index(q_size, k_size, table.device)]


def _query_terms(
    q: Tensor,
    q_grid: Grid,
    k_grid: Grid,
    rel_pos_h: Optional[Tensor],
    rel_pos_w: Optional[Tensor],
    rel_pos_t: Optional[Tensor],
    num_prefix: int,
) -> Dict[str, Tensor]:
    """Per axis ("t", "h", "w"), q . R[query - key] of every grid query: (B, heads, qt,
    qh, qw, k_axis). The one computation behind `decomposed_bias` and `decomposed_terms`."""
    batch, heads, _, channels = q.shape
    qt, qh, qw = q_grid
    kt, kh, kw = k_grid
    r_q = q[:, :, num_prefix:].reshape(batch, heads, qt, qh, qw, channels)
    terms = {}
    if rel_pos_t is not None:
        terms["t"] = torch.einsum("bnthwc,tkc->bnthwk", r_q, _lookup(rel_pos_t, qt, kt, q.dtype))
    if rel_pos_h is not None and rel_pos_w is not None:
        terms["h"] = torch.einsum("bnthwc,hkc->bnthwk", r_q, _lookup(rel_pos_h, qh, kh, q.dtype))
        terms["w"] = torch.einsum("bnthwc,wkc->bnthwk", r_q, _lookup(rel_pos_w, qw, kw, q.dtype))
    return terms


def decomposed_bias(
    q: Tensor,
    q_grid: Grid,
    k_grid: Grid,
    rel_pos_h: Optional[Tensor] = None,
    rel_pos_w: Optional[Tensor] = None,
    rel_pos_t: Optional[Tensor] = None,
    num_prefix: int = 1,
) -> Tensor:
    """Additive attention bias from decomposed relative positions.

    Args:
        q: (B, heads, Nq, C) queries (unscaled), Nq = num_prefix + qt*qh*qw.
        q_grid, k_grid: (t, h, w) grids of the queries and the keys.
        rel_pos_h, rel_pos_w: (Lh, C), (Lw, C) spatial tables, both or neither.
        rel_pos_t: (Lt, C) temporal table, or None.
        num_prefix: class tokens in front of the grid tokens (zero bias).
    Returns:
        (B, heads, Nq, Nk) in q's dtype, Nk = num_prefix + kt*kh*kw: each axis's term
        broadcast over the key grid.
    """
    terms = _query_terms(q, q_grid, k_grid, rel_pos_h, rel_pos_w, rel_pos_t, num_prefix)
    batch, heads = q.shape[:2]
    bias = q.new_zeros(())
    if "h" in terms:
        bias = bias + terms["h"][..., None, :, None] + terms["w"][..., None, None, :]
    if "t" in terms:
        bias = bias + terms["t"][..., :, None, None]
    bias = bias.expand(batch, heads, *q_grid, *k_grid)
    bias = bias.reshape(batch, heads, math.prod(q_grid), math.prod(k_grid))
    return F.pad(bias, (num_prefix, 0, num_prefix, 0))


def decomposed_terms(
    q: Tensor,
    q_grid: Grid,
    k_grid: Grid,
    rel_pos_h: Optional[Tensor] = None,
    rel_pos_w: Optional[Tensor] = None,
    rel_pos_t: Optional[Tensor] = None,
    num_prefix: int = 1,
) -> Tensor:
    """Query side of the factored bias: (B, heads, Nq, R), R = [kt] + [kh + kw].

    Column j of the temporal part is q . R_t[t - j] for a query at time t (likewise
    rows and columns of the spatial parts); the class token's terms are zero. With
    `key_indicators`, terms @ indicators^T equals `decomposed_bias`.
    """
    terms = _query_terms(q, q_grid, k_grid, rel_pos_h, rel_pos_w, rel_pos_t, num_prefix)
    batch, heads = q.shape[:2]
    joined = torch.cat(list(terms.values()), dim=-1).reshape(batch, heads, math.prod(q_grid), -1)
    return F.pad(joined, (0, 0, num_prefix, 0))


def key_indicators(
    k_grid: Grid, temporal: bool, spatial: bool, num_prefix: int, dtype: torch.dtype, device: torch.device
) -> Tensor:
    """Key side of the factored bias: (Nk, R) 0/1, the one-hot time [and row, column]
    of each key, in the column order of `decomposed_terms`; zero for the class token."""
    kt, kh, kw = k_grid
    t, h, w = torch.meshgrid(
        *(torch.arange(size, device=device) for size in k_grid), indexing="ij"
    )
    parts = []
    if temporal:
        parts.append(F.one_hot(t.reshape(-1), kt))
    if spatial:
        parts += [F.one_hot(h.reshape(-1), kh), F.one_hot(w.reshape(-1), kw)]
    return F.pad(torch.cat(parts, dim=-1).to(dtype), (0, 0, num_prefix, 0))
