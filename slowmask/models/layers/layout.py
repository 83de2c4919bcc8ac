"""Per-block geometry of an MViT: widths, heads, pooling kernels and strides.

MViTv2 (Li et al. 2022, sec. 3-4) grows the width and the head count at the start of
each stage (DIM_MUL / HEAD_MUL) and pools the queries there (POOL_Q_STRIDE); keys and
values are pooled in every block (POOL_KV_STRIDE, or POOL_KV_STRIDE_ADAPTIVE: the
block-0 stride divided by the query strides seen so far). The rounding below follows
PySlowFast exactly, so that parameter shapes and checkpoints match.
"""

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from slowmask.geometry import Grid

NO_POOL: Tuple[int, ...] = ()


@dataclass(frozen=True)
class BlockLayout:
    """Geometry of one MultiScaleBlock.

    `input_size` is the grid the block's relative-position tables are sized for:
    PySlowFast's nominal grid (floor division by the query strides), kept so its
    checkpoints load; the attention resizes the tables when the real grid differs.
    A kernel of `NO_POOL` means that tensor is not pooled.
    """

    dim: int
    dim_out: int
    num_heads: int
    input_size: Grid
    kernel_q: Tuple[int, ...]
    stride_q: Grid
    kernel_kv: Tuple[int, ...]
    stride_kv: Grid
    drop_path: float


def round_width(width: float, multiplier: float, min_width: int = 1, divisor: int = 1) -> int:
    """`width * multiplier` rounded to a multiple of `divisor` (PySlowFast's rule)."""
    width = width * multiplier
    width_out = max(min_width, int(width + divisor / 2) // divisor * divisor)
    if width_out < 0.9 * width:
        width_out += divisor
    return int(width_out)


def _multipliers(rows: Sequence[Sequence[float]], depth: int) -> List[float]:
    """[[block, factor], ...] -> one factor per block boundary (depth + 1 entries)."""
    factors = [1.0] * (depth + 1)
    for block, factor in rows:
        factors[int(block)] = float(factor)
    return factors


def _stride_rows(rows: Sequence[Sequence[int]]) -> Dict[int, Grid]:
    return {int(row[0]): tuple(int(s) for s in row[1:]) for row in rows}


def _adaptive_kv_strides(
    first: Sequence[int], q_strides: Dict[int, Grid], depth: int
) -> Dict[int, Grid]:
    """Key/value strides that keep the pooled key grid constant as queries shrink."""
    strides, current = {}, tuple(int(s) for s in first)
    for i in range(depth):
        if i in q_strides:
            current = tuple(max(c // s, 1) for c, s in zip(current, q_strides[i]))
        strides[i] = current
    return strides


def _kernel(stride: Grid, kvq_kernel: Optional[Sequence[int]]) -> Tuple[int, ...]:
    """Pooling kernel of a listed stride; NO_POOL when kernel and stride are all ones."""
    kernel = tuple(kvq_kernel) if kvq_kernel is not None else tuple(s + 1 if s > 1 else s for s in stride)
    if all(k == 1 for k in kernel) and all(s == 1 for s in stride):
        return NO_POOL
    return kernel


def mvit_layout(
    embed_dim: int,
    num_heads: int,
    depth: int,
    input_grid: Grid,
    dim_mul: Sequence[Sequence[float]] = (),
    head_mul: Sequence[Sequence[float]] = (),
    pool_q_stride: Sequence[Sequence[int]] = (),
    pool_kv_stride: Sequence[Sequence[int]] = (),
    pool_kv_stride_adaptive: Optional[Sequence[int]] = None,
    pool_kvq_kernel: Optional[Sequence[int]] = None,
    drop_path_rate: float = 0.0,
    dim_mul_in_att: bool = False,
) -> List[BlockLayout]:
    """The layout of all `depth` blocks; arguments mean what the MVIT.* keys of the
    same names mean. `input_grid` is the token grid after the patch embedding."""
    dim_factors, head_factors = _multipliers(dim_mul, depth), _multipliers(head_mul, depth)
    q_strides = _stride_rows(pool_q_stride)
    if pool_kv_stride_adaptive is not None:
        kv_strides = _adaptive_kv_strides(pool_kv_stride_adaptive, q_strides, depth)
    else:
        kv_strides = _stride_rows(pool_kv_stride)
    ones = (1, 1, 1)
    layout, dim, grid = [], embed_dim, tuple(input_grid)
    for i in range(depth):
        num_heads = round_width(num_heads, head_factors[i])
        # As PySlowFast: the width rounds to a multiple of the next block's head count.
        if dim_mul_in_att:
            dim_out = round_width(dim, dim_factors[i], divisor=round_width(num_heads, head_factors[i]))
        else:
            dim_out = round_width(dim, dim_factors[i + 1], divisor=round_width(num_heads, head_factors[i + 1]))
        stride_q, stride_kv = q_strides.get(i, ones), kv_strides.get(i, ones)
        layout.append(
            BlockLayout(
                dim=dim,
                dim_out=dim_out,
                num_heads=num_heads,
                input_size=grid,
                kernel_q=_kernel(stride_q, pool_kvq_kernel) if i in q_strides else NO_POOL,
                stride_q=stride_q,
                kernel_kv=_kernel(stride_kv, pool_kvq_kernel) if i in kv_strides else NO_POOL,
                stride_kv=stride_kv,
                drop_path=drop_path_rate * i / (depth - 1) if depth > 1 else 0.0,
            )
        )
        grid = tuple(size // s for size, s in zip(grid, stride_q))
        dim = dim_out
    return layout
