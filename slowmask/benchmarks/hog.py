"""The HOG part of `tools/benchmark.py`: `slowmask.targets.hog` against the
straightforward HOG, `hog_reference`, which tests also compare the target against.

`hog_reference` is not a target. It follows PySlowFast's HOGLayerC: depthwise Sobel
convolutions, then a full-resolution (N, C, nbins, H, W) tensor with one plane per bin,
summed per cell. The definition is in slowmask/targets/hog.py's docstring.
"""

import math
from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from slowmask.targets.hog import hog

from .table import row
from .timing import compare


def _sobel_weights(channels: int, device: torch.device) -> Tuple[Tensor, Tensor]:
    kx = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]], device=device)
    weight_x = kx.view(1, 1, 3, 3).repeat(channels, 1, 1, 1)
    return weight_x, weight_x.transpose(2, 3)


@torch.no_grad()
def hog_reference(images: Tensor, nbins: int = 9, cell_size: int = 8) -> Tensor:
    """HOG of `images` (N, C, H, W) as float32 (N, C, nbins, H / cell_size, W / cell_size).

    Each cell's nbins-vector is L2-normalized per channel. H and W must be
    multiples of cell_size.
    """
    n, channels, height, width = images.shape
    weight_x, weight_y = _sobel_weights(channels, images.device)
    padded = F.pad(images.float(), (1, 1, 1, 1), mode="reflect")
    gx = F.conv2d(padded, weight_x, groups=channels)
    gy = F.conv2d(padded, weight_y, groups=channels)
    magnitude = torch.stack([gx, gy], dim=-1).norm(dim=-1)
    bins = (torch.atan2(gx, gy) / math.pi * nbins).floor().long() % nbins
    per_bin = torch.zeros(n, channels, nbins, height, width, device=images.device)
    per_bin.scatter_add_(2, bins.unsqueeze(2), magnitude.unsqueeze(2))
    cells = per_bin.unfold(3, cell_size, cell_size).unfold(4, cell_size, cell_size).sum(dim=(-1, -2))
    return F.normalize(cells, p=2, dim=2)


def hog_rows(batch: int, size: int, warmup: int, repeats: int) -> List[dict]:
    """The HOG row: `hog` against `hog_reference` on (batch, 3, size, size) float32
    noise, with their largest absolute difference (`max_abs_diff`)."""
    images = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    diff = (hog(images) - hog_reference(images)).abs().max().item()
    fast, reference = compare(lambda: hog(images), lambda: hog_reference(images), warmup, repeats)
    what = f"hog, {batch}x3x{size}x{size} float32, max abs diff {diff:.1e}"
    return [row("hog", what, fast, "hog_reference (PySlowFast's way)", reference, target=3.0, max_abs_diff=diff)]
