"""Running a masked-prediction model on one clip and putting its predictions back on
the prediction grid, next to the targets of every token."""

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor, nn

from slowmask.masking.grids import upsample_mask


@dataclass
class ClipPrediction:
    """Targets and predictions of one clip on the prediction grid (t, h, w).

    target:    (t*h*w, D) float32, every token's target, (t, h, w) order.
    predicted: (t*h*w, D) float32, the model's prediction for masked tokens, the target
               elsewhere (the model predicts masked tokens only).
    masked:    (t, h, w) bool, True = masked (predicted).
    loss:      the model's loss on this clip.
    """

    target: Tensor
    predicted: Tensor
    masked: Tensor
    loss: float


@torch.no_grad()
def predict_clip(model: nn.Module, target: nn.Module, clip: Tensor, mask: Tensor, grid: Sequence[int]) -> ClipPrediction:
    """Predict the masked tokens of `clip`.

    Args:
        model: `model(x, mask)` -> {"pred", "target", "loss"} (see methods/pretrainer.py), with "pred" the
            (N_masked, D) rows of the masked tokens of `grid` in (batch, t, h, w) order; for
            several prediction depths, the last (deepest) is taken.
        target: `target(x, grid)` -> (B, t*h*w, D), the model's target.
        clip: (3, T, H, W) normalized clip; mask: (t', h', w') bool on the mask grid.
        grid: the prediction grid (t, h, w).
    """
    model.eval()
    out = model(clip[None], mask[None])
    pred = out["pred"][-1] if isinstance(out["pred"], list) else out["pred"]
    masked = upsample_mask(mask[None], grid)[0]
    full_target = target(clip[None].float(), grid)[0].float()
    if pred.shape != (int(masked.sum()), full_target.shape[-1]):
        raise ValueError(
            f"the model predicted rows of shape {tuple(pred.shape)}, but the prediction grid {tuple(grid)} "
            f"has {int(masked.sum())} masked tokens with targets of width {full_target.shape[-1]}"
        )
    predicted = full_target.clone()
    predicted[masked.flatten()] = pred.float()
    return ClipPrediction(full_target, predicted, masked, float(out["loss"]))
