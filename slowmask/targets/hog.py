"""MaskFeat's HOG target (Wei et al., 2022, Sec. 3-4).

The definition, per RGB channel of the normalized clip, on the frame at the centre of
each token's temporal receptive field (`HOGTarget.frames`):
1. gradients: 3x3 Sobel filters, kx = [[1, 0, -1], [2, 0, -2], [1, 0, -1]] and ky its
   transpose, as cross-correlation after reflect-padding by 1 (`sobel_gradients`);
2. magnitude m = sqrt(gx^2 + gy^2), angle a = atan2(gx, gy);
3. bin floor(a / pi * nbins) mod nbins, nbins = 9;
4. per non-overlapping 8x8 cell, the sum of m per bin; each cell's bins L2-normalized;
5. a prediction token's target is its cells' histograms in (channel, bin, cell_y,
   cell_x) order (108 values for a 16x16 token), the order of PySlowFast's heads.

HOG is taken per RGB channel: MaskFeat found colour gradients a better target than
grayscale ones. The histogram goes straight into the cells: one scatter-add over
(N, C, nbins * cells), indexed by bin * cells + cell, instead of a full-resolution
tensor per bin pooled afterwards (`hog_reference`); the computation is memory bound
and runs every training step.
"""

import math
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from fvcore.common.config import CfgNode
from torch import Tensor, nn

from slowmask.geometry import TokenGeometry

from .build import TARGET_REGISTRY

# HOG is computed on each of the clip's RGB channels.
RGB_CHANNELS = 3


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


def check_cell_size(height: int, width: int, cell_size: int, what: str = "image") -> None:
    """Raise ValueError unless `cell_size` divides both `height` and `width`."""
    if cell_size < 1 or height % cell_size or width % cell_size:
        raise ValueError(
            f"HOG needs {what} sides that are multiples of the cell size {cell_size}, "
            f"got {height} x {width}"
        )


def orientation_bins(gx: Tensor, gy: Tensor, nbins: int) -> Tensor:
    """Bin index floor(atan2(gx, gy) / pi * nbins) mod nbins, int64, shaped as gx."""
    phase = torch.atan2(gx, gy).div_(math.pi).mul_(nbins).floor_().remainder_(nbins)
    return phase.long()


def cell_index(height: int, width: int, cell_size: int, device: torch.device) -> Tensor:
    """(H, W) int64: the raster index of the cell each pixel falls in."""
    rows = torch.arange(height, device=device) // cell_size
    cols = torch.arange(width, device=device) // cell_size
    return rows[:, None] * (width // cell_size) + cols[None, :]


def hog(images: Tensor, nbins: int = 9, cell_size: int = 8) -> Tensor:
    """Histograms of oriented gradients of `images` (N, C, H, W).

    Returns float32 (N, C, nbins, H / cell_size, W / cell_size): per channel and
    cell, the sum of gradient magnitudes per orientation bin, L2-normalized over
    the bins (a flat cell stays zero). Computed in float32, without autocast or
    gradient, whatever the input's dtype.
    """
    n, channels, height, width = images.shape
    check_cell_size(height, width, cell_size)
    cells_h, cells_w = height // cell_size, width // cell_size
    with torch.no_grad(), torch.autocast(images.device.type, enabled=False):
        gx, gy = sobel_gradients(images.float())
        index = orientation_bins(gx, gy, nbins).mul_(cells_h * cells_w)
        index.add_(cell_index(height, width, cell_size, images.device))
        magnitude = gx.hypot_(gy)
        del gy
        hist = magnitude.new_zeros(n, channels, nbins * cells_h * cells_w)
        hist.scatter_add_(2, index.view(n, channels, -1), magnitude.view(n, channels, -1))
        return F.normalize(hist.view(n, channels, nbins, cells_h, cells_w), p=2, dim=2)


@TARGET_REGISTRY.register(name="hog")
class HOGTarget(nn.Module):
    """HOG of each prediction token's patch on one frame: the "hog" target.

    Prediction-grid temporal index i reads input frame `frame_offset + i * frame_stride`.
    A token covering a (ph, pw) pixel patch gets 3 * nbins * (ph / cell_size) *
    (pw / cell_size) values, ordered (channel, bin, cell_y, cell_x) as PySlowFast's
    prediction heads expect. No parameters.

    Args:
        frame_stride: input frames per prediction-grid temporal step.
        frame_offset: input frame of temporal index 0.
        nbins: orientation bins over [0, pi) (a gradient and its negation share one).
        cell_size: side of a square histogram cell, in pixels.
    """

    def __init__(self, frame_stride: int = 1, frame_offset: int = 0, nbins: int = 9, cell_size: int = 8):
        super().__init__()
        if frame_stride < 1 or frame_offset < 0 or nbins < 1 or cell_size < 1:
            raise ValueError(
                "HOGTarget needs frame_stride >= 1, frame_offset >= 0, nbins >= 1 and cell_size >= 1, got "
                f"{frame_stride}, {frame_offset}, {nbins}, {cell_size}"
            )
        self.frame_stride = frame_stride
        self.frame_offset = frame_offset
        self.nbins = nbins
        self.cell_size = cell_size

    @classmethod
    def from_config(cls, cfg: CfgNode) -> "HOGTarget":
        """MASK.HOG_NBINS bins in cells of MASK.HOG_CELL_SIZE pixels; frame stride from the
        prediction grid; with MASK.HOG_CENTER_FRAME the frame at the centre of the patch
        embedding's temporal receptive field (MVIT.PATCH_KERNEL, MVIT.PATCH_PADDING),
        otherwise the first frame of each step, as PySlowFast."""
        geometry = TokenGeometry.from_config(cfg)
        frame_stride = geometry.prediction_stride[0]
        frame_offset = geometry.first_token_centre[0] if cfg.MASK.HOG_CENTER_FRAME else 0
        if frame_offset < 0:
            raise ValueError(
                f"MASK.HOG_CENTER_FRAME: MVIT.PATCH_KERNEL[0] // 2 - MVIT.PATCH_PADDING[0] = {frame_offset} "
                "puts the first token's centre before the clip; reduce the temporal padding or set "
                "MASK.HOG_CENTER_FRAME False"
            )
        return cls(frame_stride=frame_stride, frame_offset=frame_offset, nbins=cfg.MASK.HOG_NBINS,
                   cell_size=cfg.MASK.HOG_CELL_SIZE)

    def dim(self, patch: Tuple[int, int, int]) -> int:
        """Length of one target vector for a token covering `patch` = (frames, height,
        width) input pixels."""
        _, patch_h, patch_w = patch
        check_cell_size(patch_h, patch_w, self.cell_size, what="prediction-token patch")
        return RGB_CHANNELS * self.nbins * (patch_h // self.cell_size) * (patch_w // self.cell_size)

    def frames(self, t: int, num_frames: int) -> slice:
        """The input frames of the t prediction-grid temporal indices, as a slice of T."""
        last = self.frame_offset + (t - 1) * self.frame_stride
        if last >= num_frames:
            raise ValueError(
                f"HOG target frames {self.frame_offset} + i * {self.frame_stride} for i < {t} reach frame "
                f"{last}, but the clip has {num_frames} frames"
            )
        return slice(self.frame_offset, last + 1, self.frame_stride)

    @torch.no_grad()
    def forward(self, clip: Tensor, grid: Sequence[int]) -> Tensor:
        """Targets (B, t*h*w, C * nbins * cy * cx) of `clip` (B, C, T, H, W) on the
        prediction grid (t, h, w), rows in (t, h, w) order; cy, cx = H / h / cell_size,
        W / w / cell_size."""
        batch, channels, num_frames, height, width = clip.shape
        t, h, w = grid
        if height % h or width % w:
            raise ValueError(
                f"the prediction grid {tuple(grid)} does not divide the frame {height} x {width}"
            )
        check_cell_size(height // h, width // w, self.cell_size, what="prediction-token patch")
        frames = clip[:, :, self.frames(t, num_frames)].transpose(1, 2).flatten(0, 1)
        cells = hog(frames, self.nbins, self.cell_size)
        cy, cx = height // h // self.cell_size, width // w // self.cell_size
        cells = cells.view(batch, t, channels, self.nbins, h, cy, w, cx)
        return cells.permute(0, 1, 4, 6, 2, 3, 5, 7).reshape(batch, t * h * w, -1)

