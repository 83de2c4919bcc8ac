"""Pixel targets: the patch of pixels each prediction token covers, raw (SimMIM, Xie et
al., 2022) or normalized per patch (MAE, He et al., 2022, Sec. 3, "normalized pixels",
which they found to improve representations).

A patch's values are ordered (frame, row, column, channel), PySlowFast's order for MAE
("nthwupqc"), so its pretrained decoders stay usable. With `time_stride` only the first
frame of each temporal patch is regressed (PySlowFast's MASK.TIME_STRIDE_LOSS): a 2x16x16
video token predicts 16 * 16 * 3 = 768 values instead of 1536.
"""

from typing import Sequence, Tuple

import torch
from fvcore.common.config import CfgNode
from torch import Tensor, nn

from .build import TARGET_REGISTRY

# Pixel targets are taken from the clip's RGB channels.
RGB_CHANNELS = 3
# Added to a patch's variance before the square root (PySlowFast's and MAE's value).
NORM_EPS = 1e-6


def patch_size(clip_size: Sequence[int], grid: Sequence[int]) -> Tuple[int, int, int]:
    """(pt, ph, pw) pixels per token of `grid` (t, h, w) on a (T, H, W) clip; ValueError
    unless the grid divides the clip."""
    if len(grid) != 3 or any(g < 1 or size % g for size, g in zip(clip_size, grid)):
        raise ValueError(f"the token grid {tuple(grid)} does not divide the clip (T, H, W) = {tuple(clip_size)}")
    return tuple(size // g for size, g in zip(clip_size, grid))


def patchify(clip: Tensor, patch: Sequence[int]) -> Tensor:
    """(B, C, T, H, W) -> (B, t*h*w, pt*ph*pw*C), tokens in (t, h, w) order, values in
    (frame, row, column, channel) order; t, h, w = T / pt, H / ph, W / pw."""
    batch, channels, frames, height, width = clip.shape
    pt, ph, pw = patch
    if frames % pt or height % ph or width % pw:
        raise ValueError(f"the patch {tuple(patch)} does not divide the clip (T, H, W) = {(frames, height, width)}")
    t, h, w = frames // pt, height // ph, width // pw
    x = clip.reshape(batch, channels, t, pt, h, ph, w, pw)
    x = torch.einsum("bctuhpwq->bthwupqc", x)
    return x.reshape(batch, t * h * w, pt * ph * pw * channels)


def unpatchify(tokens: Tensor, patch: Sequence[int], grid: Sequence[int], channels: int = RGB_CHANNELS) -> Tensor:
    """Inverse of `patchify`: (B, t*h*w, pt*ph*pw*C) -> (B, C, t*pt, h*ph, w*pw)."""
    batch = tokens.shape[0]
    (pt, ph, pw), (t, h, w) = patch, grid
    x = tokens.reshape(batch, t, h, w, pt, ph, pw, channels)
    x = torch.einsum("bthwupqc->bctuhpwq", x)
    return x.reshape(batch, channels, t * pt, h * ph, w * pw)


def normalize_patches(patches: Tensor, eps: float = NORM_EPS) -> Tensor:
    """(..., D) -> each row minus its mean, divided by sqrt(its unbiased variance + eps)."""
    mean = patches.mean(dim=-1, keepdim=True)
    var = patches.var(dim=-1, keepdim=True)
    return (patches - mean) / (var + eps).sqrt()


@TARGET_REGISTRY.register(name="pixel")
class PixelTarget(nn.Module):
    """The pixels of each prediction token's patch: the "pixel" target. No parameters.

    Args:
        normalize: per-patch zero mean and unit variance (MAE); raw pixels otherwise (SimMIM).
        time_stride: regress only the first frame of each token's temporal patch.
    """

    def __init__(self, normalize: bool = True, time_stride: bool = True) -> None:
        super().__init__()
        self.normalize = normalize
        self.time_stride = time_stride

    @classmethod
    def from_config(cls, cfg: CfgNode) -> "PixelTarget":
        """MASK.NORM_PRED_PIXEL and MASK.TIME_STRIDE_LOSS."""
        return cls(normalize=cfg.MASK.NORM_PRED_PIXEL, time_stride=cfg.MASK.TIME_STRIDE_LOSS)

    def dim(self, patch: Tuple[int, int, int]) -> int:
        """Length of one target vector for a token covering `patch` = (frames, height,
        width) input pixels."""
        frames, height, width = patch
        return (1 if self.time_stride else frames) * height * width * RGB_CHANNELS

    @torch.no_grad()
    def forward(self, clip: Tensor, grid: Sequence[int]) -> Tensor:
        """Targets (B, t*h*w, dim(patch)) of `clip` (B, 3, T, H, W) on the prediction grid
        (t, h, w), rows in (t, h, w) order."""
        _, channels, frames, height, width = clip.shape
        if channels != RGB_CHANNELS:
            raise ValueError(f"pixel targets need a clip with {RGB_CHANNELS} channels, got {channels}")
        pt, ph, pw = patch_size((frames, height, width), grid)
        if self.time_stride:
            clip, pt = clip[:, :, ::pt], 1
        patches = patchify(clip, (pt, ph, pw))
        return normalize_patches(patches) if self.normalize else patches
