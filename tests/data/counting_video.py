"""Videos whose frames show their own number, to check which frame a decoder returns."""

from typing import List

import numpy as np
import torch

# Frame k of a counting video is flat grey of value GREY_STEP * k.
GREY_STEP = 4
COUNTING_SIZE = (32, 64)  # (H, W); decord 0.6 fails on some native widths, 48 among them


def counting_frames(num_frames: int) -> np.ndarray:
    """uint8 (T, H, W, 3): frame k is flat grey GREY_STEP * k."""
    values = (np.arange(num_frames) * GREY_STEP).astype(np.uint8)
    return np.broadcast_to(values[:, None, None, None], (num_frames, *COUNTING_SIZE, 3)).copy()


def frame_numbers(frames: torch.Tensor) -> List[int]:
    """The number each frame of a counting video shows, from its mean grey."""
    means = frames.float().mean(dim=(1, 2, 3))
    return torch.round(means / GREY_STEP).long().tolist()


# Presentation times (ms) of the variable-rate video: gaps after frames 3 and 6.
VFR_TIMES_MS = [0, 33, 67, 100, 200, 233, 267, 500, 533, 567, 600, 633, 667, 700, 733, 767, 800, 833, 867, 900]
