"""Decoding hundreds of items keeps the resident memory flat: every container and
reader is closed, and nothing of a decode outlives its item."""

import functools
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, List

import numpy as np
import pytest
import torch

from slowmask.data import Kinetics, Video, open_video
from slowmask.data.clip_windows import RandomClipSampler
from slowmask.data.synthetic import render_moving_shape
from slowmask.data.video_writer import write_video
from slowmask.data.transforms import RandomResizedBox, TrainTransform
from slowmask.benchmarks.timing import release_free_memory, resident_bytes

HEIGHT, WIDTH = 240, 320
FIRST, LAST = 50, 300
# One leaked decoded frame per item would add (LAST - FIRST) * 240 * 320 * 3 bytes =
# 57.6 MB between decode FIRST and decode LAST; a leaked container or reader (which holds
# decoded frames and codec buffers) more. Without a leak the growth measures under 1 MB.
MAX_GROWTH_BYTES = 16 * 2**20

pytestmark = pytest.mark.skipif(resident_bytes() is None, reason="needs /proc to read the resident set size")


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Four 32-frame 320 x 240 videos."""
    folder = tmp_path_factory.mktemp("memory")
    rng = np.random.default_rng(0)
    paths = []
    for number in range(4):
        path = str(folder / f"v{number}.mp4")
        write_video(path, render_moving_shape("square", "vertical", rng, 32, HEIGHT, WIDTH))
        paths.append((path, 0))
    return paths


def _leaking(opener: Callable[[str], Video]) -> Callable[[str], Video]:
    """`opener` whose videos keep the first frame of every decode alive: a leak."""
    leaked: List[torch.Tensor] = []

    def leaking_opener(path: str) -> Video:
        video = opener(path)
        decode = video.get_frames

        def get_frames(indices) -> torch.Tensor:
            frames = decode(indices)
            leaked.append(frames[:1].clone())
            return frames

        video.get_frames = get_frames
        return video

    return leaking_opener


def _growth(videos, backend: str, leak: bool) -> int:
    """Resident bytes gained between decode FIRST and decode LAST of a dataset."""
    opener = functools.partial(open_video, backend=backend)
    opener = _leaking(opener) if leak else opener
    transform = TrainTransform(32, RandomResizedBox((0.3, 1.0), (0.75, 1.33)), [0.45] * 3, [0.225] * 3)
    dataset = Kinetics(videos, RandomClipSampler(4, 4), transform, open_video=opener, decode_timeout=30.0)
    sizes = {}
    for number in range(1, LAST + 1):
        dataset[number % len(videos)]
        if number in (FIRST, LAST):
            release_free_memory()
            sizes[number] = resident_bytes()
    return sizes[LAST] - sizes[FIRST]


def growth(videos, backend: str, leak: bool = False) -> int:
    """`_growth` in a fresh process: in a long test session the heap that earlier tests
    freed would take in the first tens of MB of a leak without any growth of the RSS."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_growth, videos, backend, leak).result()


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_resident_memory_stays_flat_over_hundreds_of_decodes(videos, backend):
    gained = growth(videos, backend)
    assert gained < MAX_GROWTH_BYTES, f"{backend}: {gained / 2**20:.1f} MB more after {LAST - FIRST} decodes"


def test_the_bound_catches_a_leak_of_one_frame_per_decode(videos):
    assert growth(videos, "pyav", leak=True) > MAX_GROWTH_BYTES
