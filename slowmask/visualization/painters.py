"""What to draw for a prediction, found from the target's class (PAINTERS).

A masked-prediction model regresses a target per prediction token (HOG for MaskFeat,
pixels for MAE); a painter turns such rows, target or predicted alike, back into
pictures of the frames they describe, so the two can be shown side by side.
"""

from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
from torch import Tensor, nn

from slowmask.targets import HOGTarget, PixelTarget
from slowmask.targets.pixel import RGB_CHANNELS, unpatchify

from .hog_glyphs import channel_mean_cells, hog_glyphs, token_rows_to_cells

# Standard deviations of a standardized pixel value at either end of the drawn range.
PIXEL_SIGMAS = 2.0

# Painter classes by the target class they draw. A target registers once, in TARGET_REGISTRY;
# its painter is found from its class (or a base class), whatever names it is registered under.
PAINTERS: Dict[type, type] = {}
PAINTER_CONTRACT = """A painter class is built as `cls(target)` from the target module and has:
    frame_indices(t, num_frames) -> [int]: the clip frame each prediction-grid temporal
        index describes (the one shown beside its pictures);
    paint(rows, grid, frame_size, scale) -> uint8 (t, H * scale, W * scale, 3): pictures of
        rows (t*h*w, D) on the prediction grid (t, h, w), for frames of frame_size (H, W);
    caption() -> str: what the target pictures show, printed under the figure.
"""


def paints(target_class: type) -> Callable[[type], type]:
    """Class decorator: the painter of `target_class` and its subclasses (PAINTER_CONTRACT)."""

    def register(painter: type) -> type:
        if target_class in PAINTERS:
            raise ValueError(f"{target_class.__name__} already has a painter: {PAINTERS[target_class].__name__}")
        PAINTERS[target_class] = painter
        return painter

    return register


@paints(HOGTarget)
class HOGPainter:
    """HOG rows as oriented-gradient glyphs, one per 8 x 8 cell (see hog_glyphs.py), the
    mean over the RGB channels' histograms."""

    def __init__(self, target: nn.Module) -> None:
        self.target = target

    def frame_indices(self, t: int, num_frames: int) -> List[int]:
        return list(range(num_frames))[self.target.frames(t, num_frames)]

    def caption(self) -> str:
        return ("target: the HOG of the frame shown in each row (the temporally centred frame of each token), one "
                "glyph per 8 x 8 cell: the strength of each gradient orientation, mean over the RGB channels")

    def paint(self, rows: Tensor, grid: Sequence[int], frame_size: Tuple[int, int], scale: int) -> np.ndarray:
        t, h, w = grid
        height, width = frame_size
        cells_per_token = (height // h // self.target.cell_size) * (width // w // self.target.cell_size)
        channels = rows.shape[-1] // (cells_per_token * self.target.nbins)
        pictures = []
        for frame_rows in rows.reshape(t, h * w, -1):
            cells = token_rows_to_cells(frame_rows, (h, w), channels, self.target.nbins)
            pictures.append(hog_glyphs(channel_mean_cells(cells), cell_pixels=self.target.cell_size * scale))
        return np.stack(pictures)


@paints(PixelTarget)
class PixelPainter:
    """Pixel rows (MAE, SimMIM; see targets/pixel.py) put back into frames: the first frame
    of each token's temporal patch. Values are drawn as standardized: 0 is mid-grey and
    +-PIXEL_SIGMAS the ends of the range, which shows per-patch normalized targets (MAE) and
    mean/std-normalized clips (SimMIM) alike; the colours of a normalized patch are its
    own, relative to its mean."""

    def __init__(self, target: nn.Module) -> None:
        self.target = target

    def frame_indices(self, t: int, num_frames: int) -> List[int]:
        return list(range(0, num_frames, num_frames // t))[:t]

    def caption(self) -> str:
        if self.target.normalize:
            return ("target: pixels normalized per patch (mean 0, std 1 within each patch, MAE's norm_pix_loss): "
                    f"grey is each patch's own mean and +-{PIXEL_SIGMAS:g} std the ends of the range, so a patch "
                    "shows its contrast, not its colour, and the target looks unlike the frame")
        return (f"target: the clip's normalized pixels (DATA.MEAN / DATA.STD): grey is 0 and +-{PIXEL_SIGMAS:g} std "
                "the ends of the range")

    def paint(self, rows: Tensor, grid: Sequence[int], frame_size: Tuple[int, int], scale: int) -> np.ndarray:
        _, h, w = grid
        height, width = frame_size
        patch_h, patch_w = height // h, width // w
        patch_t = rows.shape[-1] // (patch_h * patch_w * RGB_CHANNELS)
        clip = unpatchify(rows[None].float().cpu(), (patch_t, patch_h, patch_w), grid)[0, :, ::patch_t]  # (3, t, H, W)
        shown = (clip / (2 * PIXEL_SIGMAS) + 0.5).clamp(0, 1).mul(255).round().byte()
        pictures = shown.permute(1, 2, 3, 0).numpy()
        return pictures.repeat(scale, axis=1).repeat(scale, axis=2)


def build_painter(target: nn.Module):
    """The painter of the `target` module's class (or of its nearest base class that has one)."""
    for cls in type(target).__mro__:
        if cls in PAINTERS:
            return PAINTERS[cls](target)
    registered = ", ".join(sorted(cls.__name__ for cls in PAINTERS))
    raise ValueError(
        f"no painter is registered for the target {type(target).__name__} (registered: {registered}); "
        "decorate one with @paints(YourTarget) from slowmask.visualization.painters to draw its predictions"
    )
