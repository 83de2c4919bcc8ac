"""Real pixels for the demos: scikit-learn's 1797 scans of handwritten digits (8x8, values
0-16, Alpaydin & Kaynak's UCI set, shipped with scikit-learn: nothing is downloaded) as
images and as moving-digit videos.

The scans are split once into train / val / test (`split_scans`: stratified by digit,
the same split whatever seed the demo data is written with), so that the test split's
writers are never seen in training, in images or in videos.

Images: each scan upsampled (bilinear) to a square of `size` pixels, grey on black,
written as class folders (`write_digit_images`).

Videos (`DIGIT_CLASS_SETS`, rendered by `digit_renderers` for `write_demo_dataset`):
    moving_digits  a scan moving on a dark canvas in a random direction at a random
                   speed, bouncing off the borders (Srivastava et al. 2015's Moving
                   MNIST, one digit): the class is the digit, so only appearance tells
                   the classes apart
    digit_motion   a scan moving horizontally or vertically (bouncing): the class is
                   the digit and the axis (label = 2 * digit + axis), so both matter
Colours of the digit and the canvas are drawn per video, so that the class is never in
the colours.
"""

import logging
import os
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
from iopath.common.file_io import g_pathmgr
from PIL import Image

from slowmask.utils.errors import UsageError

from .synthetic import ClassRenderers, bounce

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
# The split of the scans is fixed: this seed draws it, never the demo's --seed.
SPLIT_SEED = 0
# Share of each digit's scans held out for val and for test (the rest trains).
HELD_OUT_SHARE = 1 / 6
# The largest value of a scan (4x4 blocks of a 32x32 bitmap, counted: 0-16).
SCAN_MAX = 16.0
# Side of a moving digit against the frame's short side (Moving MNIST: 28 of 64 pixels): on 64x64
# frames seen at 32x32, 16 pixels, 2 per pixel of the scan.
DIGIT_SIDE_SHARE = 0.5
# The two axes of digit_motion, in label order.
DIGIT_AXES = ("horizontal", "vertical")
DIGIT_CLASS_SETS = ("moving_digits", "digit_motion")


def load_digit_scans() -> Tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits: float (1797, 8, 8) scans in [0, 16] and int (1797,) digits."""
    try:
        from sklearn.datasets import load_digits  # an optional dependency: only the real-pixel demos need it
    except ImportError as error:
        raise UsageError(f"the digit scans come with scikit-learn, which is not installed ({error}); "
                         "run `pip install scikit-learn` (or `pip install -e .[test]`)") from error
    digits = load_digits()
    return digits.images.astype(np.float32), digits.target.astype(np.int64)


def split_scans(labels: np.ndarray, seed: int = SPLIT_SEED) -> Dict[str, np.ndarray]:
    """{split: sorted indices into `labels`}: per digit, HELD_OUT_SHARE of its scans
    (rounded) for val, as many for test, the rest for train, drawn by `seed`."""
    rng = np.random.default_rng(seed)
    parts: Dict[str, List[np.ndarray]] = {split: [] for split in SPLITS}
    for digit in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == digit))
        held_out = int(round(len(members) * HELD_OUT_SHARE))
        parts["val"].append(members[:held_out])
        parts["test"].append(members[held_out : 2 * held_out])
        parts["train"].append(members[2 * held_out :])
    return {split: np.sort(np.concatenate(chunks)) for split, chunks in parts.items()}


def scan_to_grey(scan: np.ndarray, side: int) -> np.ndarray:
    """float (side, side) intensities in [0, 1] of one (8, 8) scan, upsampled bilinearly."""
    image = Image.fromarray((scan / SCAN_MAX).astype(np.float32), mode="F")
    return np.clip(np.asarray(image.resize((side, side), Image.BILINEAR)), 0.0, 1.0)


def write_digit_images(
    out_dir: str, scans: np.ndarray, labels: np.ndarray, size: int = 64, labelled_per_class: int = 0
) -> Dict[str, List[Tuple[str, int]]]:
    """Write every scan as a `size` x `size` grey PNG into out_dir/{split}/{digit}/NNNN.png
    (NNNN: the scan's index in scikit-learn's order). With `labelled_per_class` > 0, also
    out_dir/few_labels/train.csv (that many training images per digit, the first of a
    fixed draw), val.csv and test.csv (every image of the split): the lists of few-label
    fine-tuning. Returns {split: [(path, label)]}."""
    out_dir = os.path.abspath(out_dir)
    rows: Dict[str, List[Tuple[str, int]]] = {}
    for split, indices in split_scans(labels).items():
        rows[split] = []
        for index in indices:
            folder = os.path.join(out_dir, split, str(labels[index]))
            g_pathmgr.mkdirs(folder)
            path = os.path.join(folder, f"{index:04d}.png")
            grey = (scan_to_grey(scans[index], size) * 255).round().astype(np.uint8)
            Image.fromarray(np.repeat(grey[..., None], 3, axis=2)).save(path)
            rows[split].append((path, int(labels[index])))
    if labelled_per_class:
        write_few_label_lists(os.path.join(out_dir, "few_labels"), rows, labelled_per_class)
    logger.info("wrote %d digit images (%s) of %d pixels to %s", sum(map(len, rows.values())),
                ", ".join(f"{split} {len(r)}" for split, r in rows.items()), size, out_dir)
    return rows


def write_few_label_lists(folder: str, rows: Dict[str, List[Tuple[str, int]]], per_class: int) -> None:
    """folder/train.csv with `per_class` rows of each label of rows["train"] (drawn by
    SPLIT_SEED), folder/val.csv and test.csv with all of theirs; "path label" lines."""
    rng = np.random.default_rng(SPLIT_SEED)
    train = rows["train"]
    chosen = []
    for label in sorted({label for _, label in train}):
        members = [i for i, (_, row_label) in enumerate(train) if row_label == label]
        if len(members) < per_class:
            raise ValueError(f"digit {label} has {len(members)} training images, fewer than {per_class} labelled")
        chosen.extend(sorted(rng.choice(members, per_class, replace=False)))
    g_pathmgr.mkdirs(folder)
    for split, listed in (("train", [train[i] for i in chosen]), ("val", rows["val"]), ("test", rows["test"])):
        with g_pathmgr.open(os.path.join(folder, f"{split}.csv"), "w") as f:
            f.writelines(f"{path} {label}\n" for path, label in listed)


def render_moving_digit(
    scan: np.ndarray, velocity: Tuple[float, float], rng: np.random.Generator, num_frames: int, height: int,
    width: int,
) -> np.ndarray:
    """uint8 (T, H, W, 3) frames of `scan` (8, 8), upsampled to DIGIT_SIDE_SHARE of the
    short side, starting at a random place and moving by `velocity` (dy, dx) pixels per
    frame, reflected at the borders; digit and canvas colours drawn from `rng`."""
    side = int(round(DIGIT_SIDE_SHARE * min(height, width)))
    grey = scan_to_grey(scan, side)  # (side, side)
    tops = bounce(rng.uniform(0, height - side), velocity[0], 0.0, float(height - side), num_frames)
    lefts = bounce(rng.uniform(0, width - side), velocity[1], 0.0, float(width - side), num_frames)
    intensity = np.zeros((num_frames, height, width), dtype=np.float32)
    for t, (top, left) in enumerate(zip(np.round(tops).astype(int), np.round(lefts).astype(int))):
        intensity[t, top : top + side, left : left + side] = grey
    background = rng.integers(0, 90, size=3).astype(np.float32)
    colour = rng.integers(140, 256, size=3).astype(np.float32)
    frames = background + (colour - background) * intensity[..., None]
    return frames.round().astype(np.uint8)


def _random_velocity(rng: np.random.Generator) -> Tuple[float, float]:
    """(dy, dx): 1.5-3 pixels per frame in a uniformly drawn direction."""
    speed, angle = rng.uniform(1.5, 3.0), rng.uniform(0, 2 * np.pi)
    return speed * np.sin(angle), speed * np.cos(angle)


def _axis_velocity(axis: str) -> Callable[[np.random.Generator], Tuple[float, float]]:
    """(dy, dx) along `axis` ("horizontal" or "vertical"), 1.5-3 pixels per frame, either way."""
    def velocity(rng: np.random.Generator) -> Tuple[float, float]:
        speed = rng.uniform(1.5, 3.0) * rng.choice([-1.0, 1.0])
        return (0.0, speed) if axis == "horizontal" else (speed, 0.0)
    return velocity


def digit_renderers(scans: np.ndarray, labels: np.ndarray, classes: str) -> ClassRenderers:
    """The ClassRenderers of the digit class set `classes` (a name of DIGIT_CLASS_SETS):
    a video of split S draws its scan among split S's scans of its digit."""
    if classes not in DIGIT_CLASS_SETS:
        raise ValueError(f"unknown digit class set {classes!r}: choose one of {list(DIGIT_CLASS_SETS)}")
    pools = {split: indices for split, indices in split_scans(labels).items()}
    digits = sorted(int(d) for d in np.unique(labels))
    if classes == "moving_digits":
        kinds = [(f"digit{d}", d, _random_velocity) for d in digits]
    else:
        kinds = [(f"digit{d}_{axis}", d, _axis_velocity(axis)) for d in digits for axis in DIGIT_AXES]

    def renderers(split: str) -> List[Tuple[str, Callable[..., np.ndarray]]]:
        pool = pools[split]
        return [(name, _digit_render(scans, pool[labels[pool] == digit], velocity))
                for name, digit, velocity in kinds]

    return renderers


def _digit_render(scans: np.ndarray, pool: Sequence[int], velocity: Callable) -> Callable[..., np.ndarray]:
    """render(rng, num_frames, height, width): a scan of `pool` drawn by rng, moving."""
    def render(rng: np.random.Generator, num_frames: int, height: int, width: int) -> np.ndarray:
        scan = scans[pool[int(rng.integers(len(pool)))]]
        return render_moving_digit(scan, velocity(rng), rng, num_frames, height, width)
    return render
