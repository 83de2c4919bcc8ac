"""Builders of a dataset's parts from the config: the only data code that reads cfg.

Split "train" gets a random window and a random crop and flip; "val" the central
window and crop; "test" view k of TEST.NUM_ENSEMBLE_VIEWS windows x
TEST.NUM_SPATIAL_CROPS crops (PySlowFast's test views).
"""

import functools
import logging
from typing import Callable, Optional

import torch
from fvcore.common.config import CfgNode

from .decoding import Video, open_video, resolve_backend
from .sampling import CenterClipSampler, ClipSampler, RandomClipSampler, UniformClipSampler
from .transforms import ClipTransform, EvalTransform, RandomResizedBox, ShortSideJitterBox, TrainTransform

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")


def build_clip_sampler(cfg: CfgNode, split: str) -> ClipSampler:
    """DATA.NUM_FRAMES frames DATA.SAMPLING_RATE apart at DATA.TARGET_FPS."""
    check_split(split)
    geometry = (cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE, cfg.DATA.TARGET_FPS)
    if split == "train":
        return RandomClipSampler(*geometry)
    if split == "val":
        return CenterClipSampler(*geometry)
    return UniformClipSampler(*geometry, num_views=cfg.TEST.NUM_ENSEMBLE_VIEWS)


def build_clip_transform(cfg: CfgNode, split: str) -> ClipTransform:
    """Training: relative random-resized crop (DATA.TRAIN_JITTER_SCALES_RELATIVE /
    TRAIN_JITTER_ASPECT_RELATIVE), or short-side jitter (DATA.TRAIN_JITTER_SCALES) when
    those are empty, to DATA.TRAIN_CROP_SIZE; flip when DATA.RANDOM_FLIP. Otherwise:
    short side to DATA.TEST_CROP_SIZE, then a DATA.TEST_CROP_SIZE crop."""
    check_split(split)
    data = cfg.DATA
    if split != "train":
        views = cfg.TEST.NUM_SPATIAL_CROPS if split == "test" else 1
        return EvalTransform(data.TEST_CROP_SIZE, data.TEST_CROP_SIZE, data.MEAN, data.STD, num_views=views)
    if data.TRAIN_JITTER_SCALES_RELATIVE:
        aspect = data.TRAIN_JITTER_ASPECT_RELATIVE or (3 / 4, 4 / 3)
        box_sampler = RandomResizedBox(data.TRAIN_JITTER_SCALES_RELATIVE, aspect)
    else:
        min_size, max_size = data.TRAIN_JITTER_SCALES
        box_sampler = ShortSideJitterBox(min_size, max_size, data.TRAIN_CROP_SIZE, data.INV_UNIFORM_SAMPLE)
    return TrainTransform(data.TRAIN_CROP_SIZE, box_sampler, data.MEAN, data.STD, random_flip=data.RANDOM_FLIP)


def build_video_opener(cfg: CfgNode) -> Callable[[str], Video]:
    """path -> Video with DATA.DECODING_BACKEND, frames shrunk to DATA.DECODING_SHORT_SIZE;
    several decoder threads when DATA_LOADER.ENABLE_MULTI_THREAD_DECODE."""
    return functools.partial(
        open_video,
        backend=resolve_backend(cfg.DATA.DECODING_BACKEND),
        short_side=cfg.DATA.DECODING_SHORT_SIZE,
        num_threads=0 if cfg.DATA_LOADER.ENABLE_MULTI_THREAD_DECODE else 1,
    )


def build_item_mask_generator(cfg: CfgNode) -> Optional[Callable[[torch.Generator], torch.Tensor]]:
    """The per-clip mask generator of slowmask.masking, or None when MASK.ENABLE is off."""
    if not cfg.MASK.ENABLE:
        return None
    from slowmask.masking import build_mask_generator

    return build_mask_generator(cfg)
