"""An example of your own pretraining target, outside slowmask: the pixels of the change
from each frame to the next (the motion), per patch, normalized as MAE's pixels. Select
it with

    MASK.TARGET: frame_difference
    DATA.CUSTOM_MODULES: ["my_target.py"]   # relative to the yaml that names it
"""

from typing import Sequence

import torch

from slowmask.targets import TARGET_REGISTRY, PixelTarget


@TARGET_REGISTRY.register(name="frame_difference")
class FrameDifferenceTarget(PixelTarget):
    """PixelTarget of frame t+1 minus frame t; the last frame's change is zero. Its size
    (`dim`) and its config keys (MASK.NORM_PRED_PIXEL, MASK.TIME_STRIDE_LOSS) are the
    pixel target's."""

    @torch.no_grad()
    def forward(self, clip: torch.Tensor, grid: Sequence[int]) -> torch.Tensor:
        """(B, t*h*w, dim) of `clip` (B, 3, T, H, W) on the prediction grid (t, h, w)."""
        change = torch.diff(clip, dim=2, append=clip[:, :, -1:])
        return super().forward(change, grid)
