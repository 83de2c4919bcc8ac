"""Painters (one per target class) and the per-clip figure."""

import textwrap

import numpy as np
import pytest
import torch

from slowmask.targets import HOGTarget
from slowmask.targets.pixel import PixelTarget
from slowmask.visualization import PAINTERS, build_painter, predict_clip, prediction_figure


def test_every_registered_target_has_a_painter():
    assert {HOGTarget, PixelTarget} <= set(PAINTERS)
    with pytest.raises(ValueError, match="no painter is registered for the target Identity"):
        build_painter(torch.nn.Identity())


def test_pixel_painter_puts_raw_pixels_back_in_place():
    clip = torch.linspace(-2, 2, 3 * 4 * 8 * 8).reshape(1, 3, 4, 8, 8)
    grid = (2, 2, 2)
    rows = PixelTarget(normalize=False, time_stride=True)(clip, grid)[0]
    painter = build_painter(PixelTarget(normalize=False))
    pictures = painter.paint(rows, grid, (8, 8), scale=2)
    assert pictures.shape == (2, 16, 16, 3) and painter.frame_indices(2, 4) == [0, 2]
    expected = ((clip[0, :, ::2] / 4 + 0.5) * 255).round().permute(1, 2, 3, 0).numpy()
    assert np.abs(pictures[:, ::2, ::2].astype(float) - expected).max() <= 1


class ConstantPredictor(torch.nn.Module):
    """model(x, mask) -> {"pred", "target", "loss"} predicting zeros for masked tokens of
    a (2, 2, 2) prediction grid."""

    def forward(self, x, mask):
        masked = int(mask.repeat_interleave(2, 3).sum())  # right for a (2, 2, 1) mask grid only
        return {"pred": torch.zeros(masked, 3 * 9), "target": None, "loss": torch.tensor(0.5)}


def test_predictions_fill_masked_tokens_and_the_figure_has_four_columns():
    clip = torch.randn(3, 4, 16, 16)
    mask = torch.tensor([[[True], [False]], [[False], [True]]]).expand(2, 2, 1)  # (t, h, w) = (2, 2, 1)
    target = HOGTarget(frame_stride=2)
    prediction = predict_clip(ConstantPredictor(), target, clip, mask, (2, 2, 2))
    assert prediction.masked.sum() == 4 and prediction.loss == 0.5
    assert torch.equal(prediction.predicted[prediction.masked.flatten()], torch.zeros(4, 27))
    assert torch.equal(prediction.predicted[~prediction.masked.flatten()], prediction.target[~prediction.masked.flatten()])
    frames = np.zeros((4, 16, 16, 3), dtype=np.uint8)
    figure = prediction_figure(frames, prediction, build_painter(target), (2, 2, 2), scale=2)
    caption_lines = len(textwrap.wrap(build_painter(target).caption(), 4 * 36 // 6 - 1))
    assert figure.size == (4 * (32 + 4), 14 + 2 * (32 + 4) + 12 * caption_lines)
    assert np.asarray(figure)[14 + 2 * 36:].min() < 64  # dark caption text under the grid
    with pytest.raises(ValueError, match="predicted rows of shape"):
        predict_clip(ConstantPredictor(), target, clip, mask.repeat(1, 1, 2), (2, 2, 2))


def test_the_caption_says_what_the_target_pictures_show():
    per_patch = build_painter(PixelTarget(normalize=True)).caption()
    assert per_patch.startswith("target: pixels normalized per patch (mean 0, std 1 within each patch")
    assert "grey is each patch's own mean" in per_patch
    assert build_painter(PixelTarget(normalize=False)).caption().startswith("target: the clip's normalized pixels")
    assert "temporally centred frame" in build_painter(HOGTarget(frame_stride=2)).caption()
