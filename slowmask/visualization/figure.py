"""Pictures of one clip: frames, the mask over them, the target and the prediction,
as a PNG grid (one row per prediction-grid temporal index) and as an animation."""

import os
import textwrap
from typing import Sequence

import numpy as np
import torch
from iopath.common.file_io import g_pathmgr
from PIL import Image, ImageDraw
from torch import Tensor

from slowmask.data.video_writer import write_video

COLUMNS = ("frame", "mask", "target", "prediction (masked)")
# Masked pixels are tinted with this colour ...
MASK_TINT = np.array([30, 110, 230], dtype=np.float32)
# ... at this opacity; visible cells of the prediction column are dimmed by this factor.
MASK_ALPHA = 0.6
VISIBLE_DIM = 0.3
HEADER_PIXELS = 14
GAP_PIXELS = 4
# PIL's default font: pixels per caption line and per character.
LINE_PIXELS, CHAR_PIXELS = 12, 6


def to_uint8_frames(clip: Tensor, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Normalized clip (3, T, H, W) -> uint8 RGB frames (T, H, W, 3)."""
    shape = (-1, 1, 1, 1)
    raw = clip.detach().float().cpu() * torch.tensor(std).view(shape) + torch.tensor(mean).view(shape)
    return (raw.clamp(0, 1) * 255).round().byte().permute(1, 2, 3, 0).numpy()


def enlarge(pictures: np.ndarray, scale: int) -> np.ndarray:
    """(..., H, W, C) -> (..., H * scale, W * scale, C), nearest neighbour."""
    return pictures.repeat(scale, axis=-3).repeat(scale, axis=-2)


def tint_masked(frames: np.ndarray, masked: np.ndarray) -> np.ndarray:
    """uint8 frames (T, H, W, 3) with the pixels where `masked` (T, H, W) is True tinted."""
    tinted = frames.astype(np.float32)
    tinted[masked] = (1 - MASK_ALPHA) * tinted[masked] + MASK_ALPHA * MASK_TINT
    return tinted.round().astype(np.uint8)


def masked_prediction(target: np.ndarray, predicted: np.ndarray, masked: np.ndarray) -> np.ndarray:
    """The prediction in masked pixels, the dimmed target elsewhere: (T, H, W, 3) uint8
    each, `masked` (T, H, W) bool."""
    dimmed = (target.astype(np.float32) * VISIBLE_DIM).round().astype(np.uint8)
    return np.where(masked[..., None], predicted, dimmed)


def clip_grid(columns: Sequence[np.ndarray], titles: Sequence[str] = COLUMNS, caption: str = "") -> Image.Image:
    """Lay out columns of pictures, each uint8 (t, H, W, 3) of one size, as a grid with
    one row per temporal index, a title over each column and `caption` under it all."""
    t, height, width, _ = columns[0].shape
    cell_w, cell_h = width + GAP_PIXELS, height + GAP_PIXELS
    sheet_w = len(columns) * cell_w
    lines = textwrap.wrap(caption, max(20, sheet_w // CHAR_PIXELS - 1))
    grid_h = HEADER_PIXELS + t * cell_h
    sheet = Image.new("RGB", (sheet_w, grid_h + LINE_PIXELS * len(lines)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for number, line in enumerate(lines):
        draw.text((2, grid_h + number * LINE_PIXELS), line, fill=(0, 0, 0))
    for col, (pictures, title) in enumerate(zip(columns, titles)):
        if pictures.shape != columns[0].shape:
            raise ValueError(f"column {title!r} has shape {pictures.shape}, expected {columns[0].shape}")
        draw.text((col * cell_w + 2, 1), title, fill=(0, 0, 0))
        for row, picture in enumerate(pictures):
            sheet.paste(Image.fromarray(picture), (col * cell_w, HEADER_PIXELS + row * cell_h))
    return sheet


def save_png(picture: Image.Image, path: str) -> None:
    g_pathmgr.mkdirs(os.path.dirname(path) or ".")
    with g_pathmgr.open(path, "wb") as f:
        picture.save(f, format="PNG")


def save_animation(frames: np.ndarray, path: str, fps: int = 8) -> None:
    """uint8 frames (T, H, W, 3) as a looping .gif (PIL) or an .mp4 (PyAV; H, W even)."""
    g_pathmgr.mkdirs(os.path.dirname(path) or ".")
    extension = os.path.splitext(path)[1].lower()
    if extension == ".gif":
        images = [Image.fromarray(frame) for frame in frames]
        with g_pathmgr.open(path, "wb") as f:
            images[0].save(f, format="GIF", save_all=True, append_images=images[1:],
                           duration=round(1000 / fps), loop=0)
        return
    if extension != ".mp4":
        raise ValueError(f"cannot write the animation {path}: use a .gif or .mp4 name")
    write_video(path, frames, fps=fps)
