"""Per-channel Sobel gradients, the first step of HOG (MaskFeat's target; see hog.py)."""

from typing import Tuple

import torch.nn.functional as F
from torch import Tensor


def sobel_gradients(images: Tensor) -> Tuple[Tensor, Tensor]:
    """Gradients (gx, gy), each (N, C, H, W), of float `images` (N, C, H, W).

    Per channel, the cross-correlation with kx = [[1, 0, -1], [2, 0, -2], [1, 0, -1]]
    and ky = kx transposed after reflect-padding by 1. Both kernels are separable
    ([1, 2, 1] smoothing times a [1, 0, -1] difference), which on a CPU is several
    times faster than a depthwise convolution; the values agree with it up to float
    rounding (about 1e-6 for unit-scale inputs).
    """
    padded = F.pad(images, (1, 1, 1, 1), mode="reflect")
    smooth_rows = padded[:, :, :-2] + padded[:, :, 2:]
    smooth_rows.add_(padded[:, :, 1:-1], alpha=2)
    gx = smooth_rows[..., :-2] - smooth_rows[..., 2:]
    del smooth_rows
    smooth_cols = padded[..., :-2] + padded[..., 2:]
    smooth_cols.add_(padded[..., 1:-1], alpha=2)
    gy = smooth_cols[:, :, :-2] - smooth_cols[:, :, 2:]
    return gx, gy
