"""HOG drawn the way HOG figures are drawn (Dalal & Triggs, 2005, Fig. 6): in every
cell, one line segment per orientation bin through the cell centre, its length set
by the bin's magnitude, oriented along the edge, i.e. perpendicular to the gradient
direction the bin collects. A vertical edge (horizontal gradient) is a vertical stroke.

The bin convention is slowmask's HOG (targets/hog.py): bin b collects gradients whose
angle atan2(gx, gy) lies in [b, b + 1) * pi / nbins, where gx and gy are the x and y
derivatives (up to a common sign, which an orientation in [0, pi) does not see).
"""

import math
from typing import Tuple

import numpy as np
from PIL import Image, ImageDraw
from torch import Tensor


def bin_gradient_direction(bin_index: int, nbins: int) -> Tuple[float, float]:
    """Unit (x, y) image direction (x right, y down) of the gradient at the centre of
    `bin_index`: angle a = atan2(gx, gy) means (gx, gy) is proportional to (sin a, cos a)."""
    angle = (bin_index + 0.5) * math.pi / nbins
    return math.sin(angle), math.cos(angle)


def bin_stroke_direction(bin_index: int, nbins: int) -> Tuple[float, float]:
    """Unit (x, y) direction of the stroke drawn for `bin_index`: the edge, perpendicular
    to the gradient."""
    gx, gy = bin_gradient_direction(bin_index, nbins)
    return -gy, gx


def hog_glyphs(
    cells: Tensor,
    cell_pixels: int = 16,
    color: Tuple[int, int, int] = (255, 255, 255),
    background: Tuple[int, int, int] = (0, 0, 0),
    line_width: int = 1,
) -> np.ndarray:
    """Draw HOG cells as glyphs.

    Args:
        cells: (nbins, rows, cols) non-negative bin magnitudes; a magnitude of 1 (an
            L2-normalized cell with all its energy in one bin) draws a stroke as long as
            the cell; larger values are clipped to 1, negative ones to 0.
        cell_pixels: side of one cell in the picture.
        color, background: RGB of the strokes and of the empty picture.
        line_width: stroke width in pixels.
    Returns:
        uint8 (rows * cell_pixels, cols * cell_pixels, 3) RGB picture.
    """
    if cells.ndim != 3:
        raise ValueError(f"expected HOG cells (nbins, rows, cols), got shape {tuple(cells.shape)}")
    nbins, rows, cols = cells.shape
    magnitudes = cells.detach().float().clamp(0.0, 1.0).cpu().numpy()
    picture = Image.new("RGB", (cols * cell_pixels, rows * cell_pixels), background)
    draw = ImageDraw.Draw(picture)
    half = (cell_pixels - 1) / 2
    strokes = [bin_stroke_direction(b, nbins) for b in range(nbins)]
    for row in range(rows):
        for col in range(cols):
            cx, cy = col * cell_pixels + half, row * cell_pixels + half
            for (sx, sy), magnitude in zip(strokes, magnitudes[:, row, col]):
                if magnitude <= 0:
                    continue
                reach = magnitude * half
                draw.line([(cx - sx * reach, cy - sy * reach), (cx + sx * reach, cy + sy * reach)],
                          fill=color, width=line_width)
    return np.asarray(picture)


def channel_mean_cells(hog_cells: Tensor) -> Tensor:
    """(C, nbins, rows, cols) per-channel HOG -> (nbins, rows, cols), the mean over the
    channels: one glyph per cell for an RGB HOG (each channel's cell has unit norm)."""
    if hog_cells.ndim != 4:
        raise ValueError(f"expected HOG (C, nbins, rows, cols), got shape {tuple(hog_cells.shape)}")
    return hog_cells.float().mean(dim=0)


def token_rows_to_cells(rows: Tensor, grid: Tuple[int, int], channels: int, nbins: int) -> Tensor:
    """HOG target rows of one frame's tokens -> per-channel cells.

    Args:
        rows: (h * w, C * nbins * cy * cx) target vectors of an (h, w) token grid, ordered
            (channel, bin, cell_y, cell_x) as HOGTarget writes them.
        grid: (h, w).
    Returns:
        (C, nbins, h * cy, w * cx).
    """
    h, w = grid
    per_token = rows.shape[-1] // (channels * nbins)
    side = math.isqrt(per_token)
    if rows.shape != (h * w, channels * nbins * side * side):
        raise ValueError(
            f"HOG rows of shape {tuple(rows.shape)} do not fit a {h} x {w} grid of square "
            f"{channels} x {nbins} x cy x cx tokens"
        )
    cells = rows.reshape(h, w, channels, nbins, side, side)
    return cells.permute(2, 3, 0, 4, 1, 5).reshape(channels, nbins, h * side, w * side)


__all__ = ["bin_gradient_direction", "bin_stroke_direction", "channel_mean_cells", "hog_glyphs", "token_rows_to_cells"]
