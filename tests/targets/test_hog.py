import math

import numpy as np
import pytest
import torch

from slowmask.targets import hog
from slowmask.benchmarks.hog import hog_reference


def numpy_hog(image: np.ndarray, nbins: int = 9, cell_size: int = 8) -> np.ndarray:
    """HOG of one image (C, H, W) written out with loops, straight from the definition in slowmask/targets/hog.py."""
    channels, height, width = image.shape
    kx = [[1, 0, -1], [2, 0, -2], [1, 0, -1]]

    def pixel(c, i, j):
        i = -i if i < 0 else (2 * (height - 1) - i if i >= height else i)
        j = -j if j < 0 else (2 * (width - 1) - j if j >= width else j)
        return float(image[c, i, j])

    out = np.zeros((channels, nbins, height // cell_size, width // cell_size))
    for c in range(channels):
        for i in range(height):
            for j in range(width):
                gx = sum(kx[u][v] * pixel(c, i + u - 1, j + v - 1) for u in range(3) for v in range(3))
                gy = sum(kx[v][u] * pixel(c, i + u - 1, j + v - 1) for u in range(3) for v in range(3))
                b = math.floor(math.atan2(gx, gy) / math.pi * nbins) % nbins
                out[c, b, i // cell_size, j // cell_size] += math.hypot(gx, gy)
    norm = np.sqrt((out**2).sum(axis=1, keepdims=True))
    return out / np.maximum(norm, 1e-12)


def test_shape_and_dtype():
    images = torch.randn(2, 3, 16, 24, dtype=torch.float64, requires_grad=True)
    out = hog(images)
    assert out.shape == (2, 3, 9, 2, 3)
    assert out.dtype == torch.float32 and not out.requires_grad
    assert hog(torch.randn(1, 3, 32, 32), nbins=6, cell_size=16).shape == (1, 3, 6, 2, 2)


def test_float32_under_autocast():
    images = torch.randn(2, 3, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = hog(images)
    assert out.dtype == torch.float32 and torch.equal(out, hog(images))


def test_flat_image_is_zero():
    assert torch.count_nonzero(hog(torch.full((2, 3, 16, 16), 0.7))) == 0


@pytest.mark.parametrize("bright_right", [True, False])
def test_vertical_edge_lands_in_bin_4(bright_right):
    # Columns 15 and 16 see gx = -4 (dark left) or +4, gy = 0: atan2(+-4, 0) = +-pi/2,
    # times 9 / pi = +-4.5, floor = 4 or -5, mod 9 = 4 either way.
    image = torch.zeros(1, 3, 16, 32)
    image[..., 16:] = 1.0
    if not bright_right:
        image = 1.0 - image
    out = hog(image)
    expected = torch.zeros(1, 3, 9, 2, 4)
    expected[:, :, 4, :, 1:3] = 1.0
    assert torch.allclose(out, expected)


def test_horizontal_edge_lands_in_bin_0():
    # gy = -4, gx = 0: atan2(0, -4) = pi -> 9 -> bin 0.
    image = torch.zeros(1, 3, 32, 16)
    image[..., 16:, :] = 1.0
    out = hog(image)
    expected = torch.zeros(1, 3, 9, 4, 2)
    expected[:, :, 0, 1:3, :] = 1.0
    assert torch.allclose(out, expected)


def test_matches_hand_computed_cells():
    generator = torch.Generator().manual_seed(1)
    image = torch.randn(3, 8, 16, generator=generator)
    expected = torch.from_numpy(numpy_hog(image.numpy())).float()
    assert torch.allclose(hog(image[None])[0], expected, atol=1e-5)


def test_matches_reference():
    images = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    assert (hog(images) - hog_reference(images)).abs().max() <= 1e-5


def test_rejects_sides_not_multiple_of_cell():
    with pytest.raises(ValueError, match="multiples of the cell size 8, got 12 x 16"):
        hog(torch.zeros(1, 3, 12, 16))
