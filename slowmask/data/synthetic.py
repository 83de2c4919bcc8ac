"""Synthetic videos of moving shapes, for demos and tests, and of a panning texture,
for benchmarks.

Two sets of four classes (CLASS_SETS), with random colours, size, start and speed drawn
from a seeded generator, so that the class is never in the colours, which vary more from
video to video than anything else:

    shape_motion  a circle or a square, moving horizontally or vertically (bouncing off
                  the borders): the shape and the motion tell the classes apart
    motion_axis   a circle or a square (at random) moving back and forth along a line
                  through the middle of the frame at 0, 45, 90 or 135 degrees: only the
                  motion tells them apart. This is `make demo`'s set: a tiny MaskFeat
                  learns motion from unlabelled videos, but not the shape at 32x32
                  pixels.

The panning texture has detail at every scale, so that it costs a decoder about what
camera footage of the same size costs.
"""

import functools
import logging
import os
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from iopath.common.file_io import g_pathmgr

from .video_writer import pick_encoder, write_video

logger = logging.getLogger(__name__)

# (shape, motion) of each class by set; the label is the position in the tuple. The shape
# "any" is a circle or a square, drawn per video.
CLASS_SETS = {
    "shape_motion": (("circle", "horizontal"), ("circle", "vertical"), ("square", "horizontal"),
                     ("square", "vertical")),
    "motion_axis": (("any", "axis000"), ("any", "axis045"), ("any", "axis090"), ("any", "axis135")),
}

# split -> [(file name stem, render(rng, num_frames, height, width) -> uint8 (T, H, W, 3))], one
# entry per class in label order: what write_demo_dataset draws each split's videos with.
ClassRenderers = Callable[[str], List[Tuple[str, Callable[..., np.ndarray]]]]


def bounce(start: float, velocity: float, low: float, high: float, num_frames: int) -> np.ndarray:
    """(T,) positions moving at `velocity` per frame, reflected at `low` and `high`."""
    span = high - low
    travelled = (start - low + velocity * np.arange(num_frames)) % (2 * span)
    return low + np.where(travelled > span, 2 * span - travelled, travelled)


def _horizontal(rng, centre_y, centre_x, speed, radius, height, width, num_frames):
    """From the start, bouncing between the left and right borders."""
    return np.full(num_frames, centre_y), bounce(centre_x, speed, radius, width - radius, num_frames)


def _vertical(rng, centre_y, centre_x, speed, radius, height, width, num_frames):
    """From the start, bouncing between the top and bottom borders."""
    return bounce(centre_y, speed, radius, height - radius, num_frames), np.full(num_frames, centre_x)


def _along_axis(degrees: float) -> Callable[..., Tuple[np.ndarray, np.ndarray]]:
    """A motion back and forth along the line at `degrees` (0 = rightwards, 90 = down)
    through a point near the middle of the frame, reflected where the shape meets a
    border: the line keeps its angle, unlike a diagonal bounce off a wall."""
    direction = np.array([np.sin(np.deg2rad(degrees)), np.cos(np.deg2rad(degrees))])  # (y, x)

    def motion(rng, centre_y, centre_x, speed, radius, height, width, num_frames):  # the start is not used
        size = np.array([height, width], dtype=float)
        through = size / 2 + rng.uniform(-0.1, 0.1, size=2)[::-1] * size
        # The stretch [low, high] of positions through + s * direction that keep the shape inside.
        low, high = -np.inf, np.inf
        for step, point, extent in zip(direction, through, size):
            if abs(step) > 1e-6:
                ends = sorted(((radius - point) / step, (extent - radius - point) / step))
                low, high = max(low, ends[0]), min(high, ends[1])
        travelled = bounce(rng.uniform(low, high), speed, low, high, num_frames)
        return through[0] + direction[0] * travelled, through[1] + direction[1] * travelled

    return motion


# motion name -> (rng, start y, start x, speed, radius, height, width, T) -> (T,) centre y and x.
MOTIONS: Dict[str, Callable[..., Tuple[np.ndarray, np.ndarray]]] = {
    "horizontal": _horizontal,
    "vertical": _vertical,
    **{f"axis{degrees:03d}": _along_axis(degrees) for degrees in (0, 45, 90, 135)},
}


def render_moving_shape(
    shape: str, motion: str, rng: np.random.Generator, num_frames: int = 48, height: int = 64, width: int = 80
) -> np.ndarray:
    """uint8 frames (T, H, W, 3) of one `shape` ("circle", "square", or "any": either,
    drawn from `rng`) moving as `motion` (a name of MOTIONS) on a plain background."""
    radius = rng.uniform(0.12, 0.2) * min(height, width)
    centre_y = rng.uniform(radius, height - radius)
    centre_x = rng.uniform(radius, width - radius)
    speed = rng.uniform(1.5, 3.0) * rng.choice([-1.0, 1.0])
    centre_y, centre_x = MOTIONS[motion](rng, centre_y, centre_x, speed, radius, height, width, num_frames)
    if shape == "any":
        shape = ("circle", "square")[int(rng.integers(2))]
    dy = np.arange(height)[None, :, None] - centre_y[:, None, None]  # (T, H, 1)
    dx = np.arange(width)[None, None, :] - centre_x[:, None, None]  # (T, 1, W)
    if shape == "circle":
        inside = dy**2 + dx**2 <= radius**2
    else:
        inside = (np.abs(dy) <= radius) & (np.abs(dx) <= radius)
    background = rng.integers(0, 90, size=3, dtype=np.uint8)
    colour = rng.integers(140, 256, size=3, dtype=np.uint8)
    return np.where(inside[..., None], colour, background).astype(np.uint8)


def render_panning_texture(
    rng: np.random.Generator, num_frames: int, height: int, width: int, fps: int = 30
) -> Iterator[np.ndarray]:
    """uint8 frames (H, W, 3), one at a time, of a camera panning over a textured
    canvas twice the frame's size, bouncing off its borders (about a frame height per
    second). Smooth colour blobs plus pixel noise: detail at every scale."""
    blobs = torch.from_numpy(rng.uniform(0, 255, size=(1, 3, height // 16 + 1, width // 16 + 1)).astype(np.float32))
    canvas = F.interpolate(blobs, size=(2 * height, 2 * width), mode="bicubic", align_corners=False)
    canvas = canvas[0].permute(1, 2, 0).numpy() + rng.normal(0, 12, size=(2 * height, 2 * width, 3))
    canvas = canvas.clip(0, 255).astype(np.uint8)
    tops = bounce(0.0, height / fps, 0.0, float(height), num_frames).astype(int)
    lefts = bounce(0.0, 1.3 * height / fps, 0.0, float(width), num_frames).astype(int)
    for top, left in zip(tops, lefts):
        yield canvas[top : top + height, left : left + width]




def write_demo_dataset(
    out_dir: str,
    videos_per_class: int = 8,
    num_frames: int = 48,
    height: int = 64,
    width: int = 80,
    fps: int = 30,
    seed: int = 0,
    unlabelled_per_class: int = 0,
    val_per_class: int = 0,
    test_per_class: int = 0,
    classes: str = "shape_motion",
    renderers: Optional[ClassRenderers] = None,
) -> Dict[str, List[Tuple[str, int]]]:
    """Write videos of every class of CLASS_SETS[`classes`] and train.csv / val.csv /
    test.csv into `out_dir`.

    videos/train/ holds `videos_per_class` labelled videos of each class (listed in
    train.csv) and `unlabelled_per_class` more that no list names: pretraining reads the
    whole folder (dataset video_folder), probes and fine-tuning the small labelled list.
    Validation and test get `val_per_class` and `test_per_class` videos of each class
    (0: a quarter of `videos_per_class`, at least one). CSV rows are "absolute_path label".
    `renderers` (given: `classes` only names the set in the log) draws the videos of
    other classes than the shapes' (the digits' of data/digits.py).
    Returns {split: [(path, label)]}, and "unlabelled" with label -1.
    """
    if renderers is None:
        renderers = shape_renderers(classes)
    rng = np.random.default_rng(seed)
    codec = pick_encoder()
    out_dir = os.path.abspath(out_dir)
    held_out = max(1, videos_per_class // 4)
    counts = {"train": videos_per_class, "val": val_per_class or held_out, "test": test_per_class or held_out}
    splits: Dict[str, List[Tuple[str, int]]] = {}
    for split, count in counts.items():
        folder = os.path.join(out_dir, "videos", split)
        splits[split] = _write_videos(folder, renderers(split), range(count), rng, num_frames, height, width, fps,
                                      codec)
        with g_pathmgr.open(os.path.join(out_dir, f"{split}.csv"), "w") as f:
            f.writelines(f"{path} {label}\n" for path, label in splits[split])
    # Numbered after the labelled videos, in the same folder: unlisted, so unlabelled.
    numbers = range(videos_per_class, videos_per_class + unlabelled_per_class)
    written = _write_videos(os.path.join(out_dir, "videos", "train"), renderers("train"), numbers, rng, num_frames,
                            height, width, fps, codec)
    splits["unlabelled"] = [(path, -1) for path, _ in written]
    logger.info("wrote %d videos of %s (%s) to %s", sum(map(len, splits.values())), classes, codec, out_dir)
    return splits


def shape_renderers(classes: str) -> ClassRenderers:
    """The ClassRenderers of the shape class set CLASS_SETS[`classes`] (the same in every
    split); files are named <shape>_<motion> (<motion> when the shape is "any")."""
    if classes not in CLASS_SETS:
        raise ValueError(f"unknown class set {classes!r}: choose one of {sorted(CLASS_SETS)}")
    kinds = [(motion if shape == "any" else f"{shape}_{motion}", functools.partial(render_moving_shape, shape, motion))
             for shape, motion in CLASS_SETS[classes]]
    return lambda split: kinds


def _write_videos(
    folder: str, kinds: Sequence[Tuple[str, Callable[..., np.ndarray]]], numbers: Sequence[int],
    rng: np.random.Generator, num_frames: int, height: int, width: int, fps: int, codec: str,
) -> List[Tuple[str, int]]:
    """[(path, label)] of one video of each class of `kinds` ([(stem, render)], label = its
    position) per number in `numbers`, written into `folder` as <stem>_<number>.mp4."""
    g_pathmgr.mkdirs(folder)
    rows = []
    for label, (stem, render) in enumerate(kinds):
        for number in numbers:
            path = os.path.join(folder, f"{stem}_{number:03d}.mp4")
            write_video(path, render(rng, num_frames, height, width), fps, codec)
            rows.append((path, label))
    return rows


def write_unreadable_files(out_dir: str, good_video: str) -> Dict[str, str]:
    """Files a dataset must survive, written into `out_dir` next to a readable
    `good_video` (an .mp4 with its index at the end, as FFmpeg writes it by default):

        zero_byte   an empty .mp4
        truncated   the first half of `good_video` (no index: it cannot be opened)
        text        a text file named .mp4
        missing     a path where no file is

    Returns {kind: path}.
    """
    g_pathmgr.mkdirs(out_dir)
    paths = {kind: os.path.join(out_dir, f"{kind}.mp4") for kind in ("zero_byte", "truncated", "text", "missing")}
    with g_pathmgr.open(good_video, "rb") as f:
        data = f.read()
    contents = {"zero_byte": b"", "truncated": data[: len(data) // 2], "text": b"this is not a video\n" * 50}
    for kind, content in contents.items():
        with g_pathmgr.open(paths[kind], "wb") as f:
            f.write(content)
    return paths
