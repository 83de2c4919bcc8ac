"""Token grids of MViT: from the input clip through the patch embedding and the
query-pooling stages. Shared by the models, the config checks and the mask builder.

A grid is a (t, h, w) tuple of token counts.
"""

from typing import Dict, List, Sequence, Tuple

Grid = Tuple[int, int, int]


def token_grid(
    input_size: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
) -> Grid:
    """Grid after the patch embedding, a convolution over (T, H, W)."""
    return tuple(
        (size + 2 * pad - k) // s + 1
        for size, k, s, pad in zip(input_size, kernel, stride, padding)
    )


def query_strides(pool_q_stride: Sequence[Sequence[int]], depth: int) -> List[Grid]:
    """Per block, the (t, h, w) stride of its query pooling (1, 1, 1 when none).

    `pool_q_stride` is PySlowFast's MVIT.POOL_Q_STRIDE: [[block, s_t, s_h, s_w], ...].
    """
    strides: Dict[int, Grid] = {int(row[0]): tuple(int(s) for s in row[1:]) for row in pool_q_stride}
    return [strides.get(i, (1, 1, 1)) for i in range(depth)]


def block_grids(first_grid: Grid, pool_q_stride: Sequence[Sequence[int]], depth: int) -> List[Grid]:
    """Per block, the grid of its output tokens (query pooling rounds up, as a
    strided pooling with kernel stride + 1 and padding kernel // 2 does)."""
    grids, grid = [], first_grid
    for stride in query_strides(pool_q_stride, depth):
        grid = tuple(-(-size // s) for size, s in zip(grid, stride))
        grids.append(grid)
    return grids


def divides(small: Sequence[int], big: Sequence[int]) -> bool:
    """True when every size of `small` divides the matching size of `big`."""
    return all(s > 0 and b % s == 0 for s, b in zip(small, big))
