"""Builders of a dataset's parts from the config: the only data code that reads cfg.

Split "train" gets a random window and a random crop and flip; "val" the central
window and crop; "test" view k of TEST.NUM_ENSEMBLE_VIEWS windows x
TEST.NUM_SPATIAL_CROPS crops (PySlowFast's test views; with DATA.USE_OFFSET_SAMPLING
the windows span the video from its first to its last frame).
"""

import functools
import logging
from typing import Any, Callable, Dict, Optional, Tuple

import torch
from fvcore.common.config import CfgNode

from .augment import ClipErasing, ClipRandAugment, parse_rand_augment
from .collate import ClipsToDevice, to_device
from .decoding import Video, check_device, open_video, resolve_backend
from .mixup import MixupCutmix
from .sampling import CenterClipSampler, ClipSampler, OffsetClipSampler, RandomClipSampler, UniformClipSampler
from .transforms import (
    ClipNormalizer, ClipTransform, EvalTransform, RandomResizedBox, ShortSideJitterBox, TrainTransform,
)

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")


# DATA.USE_OFFSET_SAMPLING -> the sampler of the test views.
TEST_SAMPLERS = {False: UniformClipSampler, True: OffsetClipSampler}


def build_clip_sampler(cfg: CfgNode, split: str) -> ClipSampler:
    """DATA.NUM_FRAMES frames DATA.SAMPLING_RATE apart at DATA.TARGET_FPS."""
    check_split(split)
    geometry = (cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE, cfg.DATA.TARGET_FPS)
    if split == "train":
        return RandomClipSampler(*geometry)
    if split == "val":
        return CenterClipSampler(*geometry)
    return TEST_SAMPLERS[bool(cfg.DATA.USE_OFFSET_SAMPLING)](*geometry, num_views=cfg.TEST.NUM_ENSEMBLE_VIEWS)


def build_clip_transform(cfg: CfgNode, split: str) -> ClipTransform:
    """Training: relative random-resized crop (DATA.TRAIN_JITTER_SCALES_RELATIVE /
    TRAIN_JITTER_ASPECT_RELATIVE), or short-side jitter (DATA.TRAIN_JITTER_SCALES) when
    those are empty, to DATA.TRAIN_CROP_SIZE; flip when DATA.RANDOM_FLIP. Otherwise:
    short side to DATA.TEST_CROP_SIZE, then a DATA.TEST_CROP_SIZE crop. Channels
    reversed at the end when DATA.REVERSE_INPUT_CHANNEL. With DATA.NORMALIZE_ON_DEVICE
    the training clips stay uint8, normalized (and reversed) by build_batch_transfer's
    part on the device."""
    check_split(split)
    data = cfg.DATA
    if split != "train":
        views = cfg.TEST.NUM_SPATIAL_CROPS if split == "test" else 1
        return EvalTransform(data.TEST_CROP_SIZE, data.TEST_CROP_SIZE, data.MEAN, data.STD, num_views=views,
                             reverse_channels=data.REVERSE_INPUT_CHANNEL)
    if data.TRAIN_JITTER_SCALES_RELATIVE:
        aspect = data.TRAIN_JITTER_ASPECT_RELATIVE or (3 / 4, 4 / 3)
        box_sampler = RandomResizedBox(data.TRAIN_JITTER_SCALES_RELATIVE, aspect)
    else:
        min_size, max_size = data.TRAIN_JITTER_SCALES
        box_sampler = ShortSideJitterBox(min_size, max_size, data.TRAIN_CROP_SIZE, data.INV_UNIFORM_SAMPLE)
    rand_augment, erasing = build_clip_augmentations(cfg)
    on_device = bool(data.NORMALIZE_ON_DEVICE)
    return TrainTransform(
        data.TRAIN_CROP_SIZE, box_sampler, data.MEAN, data.STD, random_flip=data.RANDOM_FLIP,
        rand_augment=rand_augment, erasing=erasing, normalize=not on_device,
        reverse_channels=data.REVERSE_INPUT_CHANNEL and not on_device,
    )


def build_batch_transfer(cfg: CfgNode) -> Callable[[Dict[str, Any], torch.device], Dict[str, Any]]:
    """How a training batch reaches its device (TrainStep's `transfer`): as it is, or with
    DATA.NORMALIZE_ON_DEVICE as uint8 clips normalized there with DATA.MEAN / DATA.STD
    (channels reversed after, when DATA.REVERSE_INPUT_CHANNEL), as the loader would have."""
    data = cfg.DATA
    if not data.NORMALIZE_ON_DEVICE:
        return to_device
    return ClipsToDevice(ClipNormalizer(data.MEAN, data.STD, reverse_channels=data.REVERSE_INPUT_CHANNEL))


def build_clip_augmentations(cfg: CfgNode) -> Tuple[Optional[ClipRandAugment], Optional[ClipErasing]]:
    """With AUG.ENABLE: RandAugment from AUG.AA_TYPE (e.g. "rand-m7-n4-mstd0.5-inc1";
    "" for none), filled with the mean colour, and random erasing with AUG.RE_PROB,
    RE_MODE, RE_COUNT (RE_PROB 0 for none)."""
    aug = cfg.AUG
    if not aug.ENABLE:
        return None, None
    fill = [255.0 * m for m in cfg.DATA.MEAN]
    rand_augment = ClipRandAugment(parse_rand_augment(aug.AA_TYPE), aug.INTERPOLATION, fill) if aug.AA_TYPE else None
    erasing = ClipErasing(aug.RE_PROB, aug.RE_MODE, aug.RE_COUNT) if aug.RE_PROB > 0 else None
    return rand_augment, erasing


def build_batch_mixer(cfg: CfgNode) -> Optional[MixupCutmix]:
    """Mixup / CutMix with label smoothing (MIXUP.*) for a classifier's training batches,
    or None when MIXUP.ENABLE is off."""
    mix = cfg.MIXUP
    if not mix.ENABLE:
        return None
    return MixupCutmix(
        cfg.MODEL.NUM_CLASSES, mix.ALPHA, mix.CUTMIX_ALPHA, mix.PROB, mix.SWITCH_PROB, mix.LABEL_SMOOTH_VALUE
    )


def build_video_opener(cfg: CfgNode) -> Callable[[str], Video]:
    """path -> Video with DATA.DECODING_BACKEND on DATA.DECODING_DEVICE, frames shrunk to
    DATA.DECODING_SHORT_SIZE; several decoder threads when DATA_LOADER.ENABLE_MULTI_THREAD_DECODE."""
    backend = resolve_backend(cfg.DATA.DECODING_BACKEND)
    check_device(backend, cfg.DATA.DECODING_DEVICE)
    return functools.partial(
        open_video,
        backend=backend,
        short_side=cfg.DATA.DECODING_SHORT_SIZE,
        num_threads=0 if cfg.DATA_LOADER.ENABLE_MULTI_THREAD_DECODE else 1,
        device=cfg.DATA.DECODING_DEVICE,
    )


def build_item_mask_generator(cfg: CfgNode) -> Optional[Callable[[torch.Generator], torch.Tensor]]:
    """The per-clip mask generator of slowmask.masking, or None when MASK.ENABLE is off."""
    if not cfg.MASK.ENABLE:
        return None
    from slowmask.masking import build_mask_generator

    return build_mask_generator(cfg)


def clips_per_video(cfg: CfgNode, split: str) -> Dict[str, int]:
    """PySlowFast's clips per decoded training video: DATA.TRAIN_CROP_NUM_TEMPORAL windows
    (`num_samples`), each at its own random start, and from each window's frames
    DATA.TRAIN_CROP_NUM_SPATIAL x AUG.NUM_SAMPLE clips (`crops_per_window`) with their own
    crop, flip, augmentation and mask. One clip per item in "val" and "test"."""
    if split != "train":
        return dict(num_samples=1, crops_per_window=1)
    return dict(
        num_samples=cfg.DATA.TRAIN_CROP_NUM_TEMPORAL,
        crops_per_window=cfg.DATA.TRAIN_CROP_NUM_SPATIAL * cfg.AUG.NUM_SAMPLE,
    )


def build_clip_dataset_parts(cfg: CfgNode, split: str) -> Dict[str, Any]:
    """The keyword arguments of a Kinetics-style dataset other than its list of videos:
    sampler, transform, video opener, mask generator, the clips per video (training
    only; see clips_per_video), RNG_SEED, DATA_LOADER.NUM_RETRIES and
    DATA_LOADER.DECODE_TIMEOUT."""
    check_split(split)
    return dict(
        sampler=build_clip_sampler(cfg, split),
        transform=build_clip_transform(cfg, split),
        open_video=build_video_opener(cfg),
        mask_generator=build_item_mask_generator(cfg),
        **clips_per_video(cfg, split),
        seed=cfg.RNG_SEED,
        num_retries=cfg.DATA_LOADER.NUM_RETRIES,
        decode_timeout=cfg.DATA_LOADER.DECODE_TIMEOUT,
    )
