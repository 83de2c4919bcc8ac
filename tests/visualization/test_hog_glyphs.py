"""HOG glyphs: strokes along edges, lengths by magnitude, rows back to cells."""

import numpy as np
import pytest
import torch

from slowmask.targets import hog
from slowmask.visualization.hog_glyphs import (
    bin_stroke_direction,
    channel_mean_cells,
    hog_glyphs,
    token_rows_to_cells,
)


def stroke_extent(picture: np.ndarray):
    """(rows spanned, columns spanned) by the lit pixels of an RGB picture."""
    lit = picture.sum(axis=-1) > 0
    rows, cols = np.nonzero(lit)
    return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


def edge_image(vertical: bool) -> torch.Tensor:
    """(1, 3, 8, 8): a step edge through the middle of one 8 x 8 cell."""
    image = torch.zeros(1, 3, 8, 8)
    if vertical:
        image[..., :, 4:] = 1.0
    else:
        image[..., 4:, :] = 1.0
    return image


def test_a_vertical_edge_is_a_vertical_stroke():
    cells = channel_mean_cells(hog(edge_image(vertical=True))[0])  # its gradient is horizontal
    height, width = stroke_extent(hog_glyphs(cells, cell_pixels=33))
    assert height >= 25 and width <= 3, (height, width)


def test_a_horizontal_edge_is_a_nearly_horizontal_stroke():
    # Its gradient angle (0 = pi) lies on the edge of bin 0, drawn at the bin's centre, pi / 18.
    cells = channel_mean_cells(hog(edge_image(vertical=False))[0])
    height, width = stroke_extent(hog_glyphs(cells, cell_pixels=33))
    assert width >= 25 and height <= 0.25 * width, (height, width)


def test_stroke_is_perpendicular_to_the_bins_gradient():
    for b in range(9):
        sx, sy = bin_stroke_direction(b, 9)
        angle = (b + 0.5) * np.pi / 9  # gradient (sin a, cos a) in (x, y)
        assert abs(sx * np.sin(angle) + sy * np.cos(angle)) < 1e-9
        assert abs(sx**2 + sy**2 - 1) < 1e-9


def test_length_follows_magnitude_and_flat_cells_stay_empty():
    cells = torch.zeros(9, 1, 3)
    cells[4, 0, 0], cells[4, 0, 1] = 1.0, 0.5
    picture = hog_glyphs(cells, cell_pixels=41)
    long_height, _ = stroke_extent(picture[:, :41])
    short_height, _ = stroke_extent(picture[:, 41:82])
    assert abs(short_height / long_height - 0.5) < 0.1
    assert picture[:, 82:].sum() == 0


def test_token_rows_round_trip_to_cells():
    # 2 x 3 tokens of 2 x 2 cells, channels 3, bins 9: the order HOGTarget writes.
    cells = torch.rand(3, 9, 4, 6)
    rows = cells.reshape(3, 9, 2, 2, 3, 2).permute(2, 4, 0, 1, 3, 5).reshape(6, -1)
    assert torch.equal(token_rows_to_cells(rows, (2, 3), 3, 9), cells)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="nbins, rows, cols"):
        hog_glyphs(torch.zeros(9, 4))
    with pytest.raises(ValueError, match="do not fit"):
        token_rows_to_cells(torch.zeros(5, 108), (2, 3), 3, 9)
