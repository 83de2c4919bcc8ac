"""Geometry of the prediction grid, read from the config for the target builders."""

import math
from typing import Tuple

from fvcore.common.config import CfgNode

from slowmask.models.geometry import query_strides


def prediction_stride(cfg: CfgNode) -> Tuple[int, int, int]:
    """Input pixels (frames, height, width) per token of the prediction grid.

    The patch embedding's stride times the query-pooling strides of the blocks up to
    max(MASK.PRETRAIN_DEPTH) (PySlowFast's feature stride); a 2-D patch embedding
    (MVIT.PATCH_2D, images) has one frame per token.
    """
    patch = list(cfg.MVIT.PATCH_STRIDE)
    if cfg.MVIT.PATCH_2D:
        patch = [1] + patch[-2:]
    blocks = query_strides(cfg.MVIT.POOL_Q_STRIDE, max(cfg.MASK.PRETRAIN_DEPTH) + 1)
    return tuple(
        int(size) * math.prod(stride[axis] for stride in blocks) for axis, size in enumerate(patch)
    )
