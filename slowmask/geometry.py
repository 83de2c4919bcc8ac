"""The ground floor: the shapes every package agrees on, computed once, without torch.

- Token grids of MViT/ViT: from the input clip through the patch embedding and the
  query-pooling stages (`token_grid`, `block_grids`), and the input pixels per token at
  any block (`TokenGeometry.stride_at`, the prediction grid's stride of the targets).
- The job's size: processes per machine times machines (`world_size`).

A grid is a (t, h, w) tuple of token counts; a stride is (frames, height, width) of input
pixels per token. `TokenGeometry.from_config` is the one place the MVIT.PATCH_* and
DATA.* sizes are turned into grids; the models, the masks, the targets, the config checks
and the benchmarks all read their grids from it.
"""

import math
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Sequence, Tuple

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


def world_size(num_gpus: int, num_shards: int) -> int:
    """Training processes of a job: one per GPU of each machine (one on a CPU-only
    machine, NUM_GPUS 0), times the NUM_SHARDS machines."""
    return max(1, num_gpus) * num_shards


@dataclass(frozen=True)
class TokenGeometry:
    """The patch embedding and the query-pooling stages of one model, as sizes.

    `kernel`, `stride` and `padding` are the patch embedding's, always 3-D: a 2-D patch
    embedding (MVIT.PATCH_2D, images) is the case of one frame per token, kernel 1 and no
    temporal padding. `pool_q_stride` is PySlowFast's MVIT.POOL_Q_STRIDE rows;
    `prediction_block` is the deepest block a masked-prediction head reads
    (max(MASK.PRETRAIN_DEPTH)).
    """

    input_size: Grid
    kernel: Grid
    stride: Grid
    padding: Grid
    pool_q_stride: Tuple[Tuple[int, ...], ...] = ()
    depth: int = 0
    prediction_block: int = 0

    @classmethod
    def from_config(cls, cfg: Any) -> "TokenGeometry":
        """The training clip's geometry: DATA.NUM_FRAMES x DATA.TRAIN_CROP_SIZE^2 through
        MVIT.PATCH_KERNEL / PATCH_STRIDE / PATCH_PADDING (PATCH_2D) and MVIT.POOL_Q_STRIDE."""
        mvit = cfg.MVIT
        sizes = [tuple(int(v) for v in mvit[key]) for key in ("PATCH_KERNEL", "PATCH_STRIDE", "PATCH_PADDING")]
        if mvit.PATCH_2D:
            sizes = [(first,) + size[-2:] for size, first in zip(sizes, (1, 1, 0))]
        kernel, stride, padding = sizes
        return cls(
            input_size=(int(cfg.DATA.NUM_FRAMES), int(cfg.DATA.TRAIN_CROP_SIZE), int(cfg.DATA.TRAIN_CROP_SIZE)),
            kernel=kernel,
            stride=stride,
            padding=padding,
            pool_q_stride=tuple(tuple(int(v) for v in row) for row in mvit.POOL_Q_STRIDE),
            depth=int(mvit.DEPTH),
            # A model without a masked-prediction head has no PRETRAIN_DEPTH to read.
            prediction_block=max((int(block) for block in cfg.MASK.PRETRAIN_DEPTH), default=0),
        )

    def for_input(self, input_size: Sequence[int]) -> "TokenGeometry":
        """The same model on clips of another (T, H, W) size."""
        return replace(self, input_size=tuple(int(size) for size in input_size))

    @property
    def token_grid(self) -> Grid:
        """The patch embedding's output grid."""
        return token_grid(self.input_size, self.kernel, self.stride, self.padding)

    @property
    def block_grids(self) -> List[Grid]:
        """Per block, the grid of its output tokens."""
        return block_grids(self.token_grid, self.pool_q_stride, self.depth)

    def stride_at(self, block: int) -> Grid:
        """Input pixels (frames, height, width) per output token of `block`: the patch
        stride times the query-pooling strides of blocks 0..block (PySlowFast's feature
        stride; the prediction grid's stride for MASK.PRETRAIN_DEPTH's deepest block)."""
        pooled = query_strides(self.pool_q_stride, block + 1)
        return tuple(size * math.prod(s[axis] for s in pooled) for axis, size in enumerate(self.stride))

    @property
    def first_token_centre(self) -> Grid:
        """Where the first token's receptive field is centred in the input, per axis:
        kernel // 2 - padding (frame 1 of a clip for PySlowFast's [3, 7, 7] kernel with
        [1, 3, 3] padding; 0 for images)."""
        return tuple(k // 2 - p for k, p in zip(self.kernel, self.padding))

    @property
    def prediction_stride(self) -> Grid:
        """Input pixels per token of the prediction grid (what a target is computed on)."""
        return self.stride_at(self.prediction_block)

    @property
    def prediction_grid(self) -> Grid:
        """The grid of the prediction tokens for the training clip."""
        return tuple(size // s for size, s in zip(self.input_size, self.prediction_stride))
