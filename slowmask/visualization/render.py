"""One clip's pictures from a prediction: the PNG grid and the masked animation."""

from typing import Sequence

import numpy as np
from PIL import Image
from torch import Tensor

from slowmask.masking.grids import upsample_mask

from .figure import clip_grid, enlarge, masked_prediction, tint_masked
from .predictions import ClipPrediction


def prediction_figure(
    frames: np.ndarray, prediction: ClipPrediction, painter, grid: Sequence[int], scale: int = 4
) -> Image.Image:
    """A grid with one row per prediction-grid temporal index: the frame the target
    describes, the frame with masked tokens tinted, the target of every token, and the
    prediction for masked tokens (visible ones show the dimmed target).

    Args:
        frames: uint8 (T, H, W, 3), the clip.
        prediction: targets and predictions on `grid` (see predict_clip).
        painter: draws target rows (see painters.py).
        grid: the prediction grid (t, h, w).
        scale: pictures are `scale` times the frame size.
    """
    num_frames, height, width, _ = frames.shape
    pixel_mask = _pixels(prediction.masked, (grid[0], height, width), scale)
    shown = enlarge(frames[painter.frame_indices(grid[0], num_frames)], scale)
    target = painter.paint(prediction.target, grid, (height, width), scale)
    predicted = painter.paint(prediction.predicted, grid, (height, width), scale)
    columns = [shown, tint_masked(shown, pixel_mask), target, masked_prediction(target, predicted, pixel_mask)]
    return clip_grid(columns, caption=painter.caption())


def masked_animation(frames: np.ndarray, mask: Tensor, scale: int = 4) -> np.ndarray:
    """uint8 (T, H * scale, W * scale, 3): every frame with its masked pixels tinted;
    `mask` (t, h, w) bool on the mask grid, True = masked."""
    num_frames, height, width, _ = frames.shape
    return tint_masked(enlarge(frames, scale), _pixels(mask, (num_frames, height, width), scale))


def _pixels(mask: Tensor, size: Sequence[int], scale: int) -> np.ndarray:
    """(t, h, w) mask -> (T, H * scale, W * scale) bool numpy array."""
    pixels = upsample_mask(mask[None], size)[0].cpu().numpy()
    return pixels.repeat(scale, axis=1).repeat(scale, axis=2)
