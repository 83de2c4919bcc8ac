"""Building a clip dataset's parts and the loaders from the config: with registry.py the
only data code that reads cfg besides the datasets' `from_config`.

The `build_*` part builders give a dataset (datasets/) its sampler, transform, opener and
mask generator; `build_loader` batches a dataset (`build_dataset`, registry.py) for this
process.

Split "train" gets a random window and a random crop and flip; "val" the central
window and crop; "test" view k of TEST.NUM_ENSEMBLE_VIEWS windows x
TEST.NUM_SPATIAL_CROPS crops (PySlowFast's test views; with DATA.USE_OFFSET_SAMPLING
the windows span the video from its first to its last frame).
"""

import functools
import logging
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.distributed as dist
from fvcore.common.config import CfgNode
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler

from slowmask.config.checks import choice_problem, raise_problems
from slowmask.geometry import world_size
from slowmask.masking import build_mask_generator

from .augment import ERASE_VALUES, ClipErasing, ClipRandAugment, parse_rand_augment
from .collate import ClipsToDevice, collate_clips, to_device
from .decoders.video import BACKEND_ALIASES, BACKENDS, DEVICE_BACKENDS, Video, open_video, resolve_backend
from .index_samplers import EpochShuffleSampler, ResumableDistributedSampler, VideoShardSampler
from .loader_workers import WatchedLoader, shield_from_stop_signals
from .mixup import MixupCutmix
from .registry import build_dataset, check_split
from .clip_windows import CenterClipSampler, ClipSampler, OffsetClipSampler, RandomClipSampler, UniformClipSampler
from .transforms import (
    ClipNormalizer, ClipTransform, EvalTransform, RandomResizedBox, ShortSideJitterBox, TrainTransform,
)

logger = logging.getLogger(__name__)


def build_clip_sampler(cfg: CfgNode, split: str) -> ClipSampler:
    """DATA.NUM_FRAMES frames DATA.SAMPLING_RATE apart at DATA.TARGET_FPS."""
    check_split(split)
    geometry = (cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE, cfg.DATA.TARGET_FPS)
    if split == "train":
        return RandomClipSampler(*geometry)
    if split == "val":
        return CenterClipSampler(*geometry)
    test_sampler = OffsetClipSampler if cfg.DATA.USE_OFFSET_SAMPLING else UniformClipSampler
    return test_sampler(*geometry, num_views=cfg.TEST.NUM_ENSEMBLE_VIEWS)


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
    raise_problems(augmentation_problems(cfg))
    fill = [255.0 * m for m in cfg.DATA.MEAN]
    rand_augment = ClipRandAugment(parse_rand_augment(aug.AA_TYPE), aug.INTERPOLATION, fill) if aug.AA_TYPE else None
    erasing = ClipErasing(aug.RE_PROB, aug.RE_MODE, aug.RE_COUNT) if aug.RE_PROB > 0 else None
    return rand_augment, erasing


def augmentation_problems(cfg: CfgNode) -> List[str]:
    """What AUG.AA_TYPE and AUG.RE_MODE ask that the augmentations cannot do (checked
    when they are built and by the preflight)."""
    aug = cfg.AUG
    if not aug.ENABLE:
        return []
    problems = []
    if aug.AA_TYPE:
        try:
            parse_rand_augment(aug.AA_TYPE)
        except ValueError as error:
            problems.append(str(error))
    if aug.RE_PROB > 0:
        problems.append(choice_problem(cfg, "AUG.RE_MODE", tuple(ERASE_VALUES)))
    return [problem for problem in problems if problem]


def build_batch_mixer(cfg: CfgNode) -> Optional[MixupCutmix]:
    """Mixup / CutMix with label smoothing (MIXUP.*) for a classifier's training batches,
    or None when MIXUP.ENABLE is off."""
    mix = cfg.MIXUP
    if not mix.ENABLE:
        return None
    return MixupCutmix(
        cfg.MODEL.NUM_CLASSES, mix.ALPHA, mix.CUTMIX_ALPHA, mix.PROB, mix.SWITCH_PROB, mix.LABEL_SMOOTH_VALUE
    )


def decoding_problems(cfg: CfgNode) -> List[str]:
    """What DATA.DECODING_BACKEND and DATA.DECODING_DEVICE ask that no decoder can do
    (checked when the opener is built and by the preflight). DATA.DECODING_DEVICE "cuda"
    is torchcodec's NVDEC, on a GPU of this job, in the training process (CUDA cannot run
    in forked loader workers, and frames already on the GPU cannot be pinned)."""
    data = cfg.DATA
    device = data.DECODING_DEVICE
    problems = [
        choice_problem(cfg, "DATA.DECODING_BACKEND", (*BACKENDS, *BACKEND_ALIASES)),
        choice_problem(cfg, "DATA.DECODING_DEVICE", ("cpu", *DEVICE_BACKENDS)),
    ]
    if device in DEVICE_BACKENDS:
        if data.DECODING_BACKEND not in DEVICE_BACKENDS[device]:
            problems.append(
                f'DATA.DECODING_DEVICE "{device}" needs DATA.DECODING_BACKEND '
                f'{" or ".join(DEVICE_BACKENDS[device])}, got {data.DECODING_BACKEND!r}'
            )
        if cfg.NUM_GPUS < 1:
            problems.append(f'DATA.DECODING_DEVICE "{device}" needs a GPU (NUM_GPUS >= 1), got NUM_GPUS {cfg.NUM_GPUS}')
        if cfg.DATA_LOADER.NUM_WORKERS != 0 or cfg.DATA_LOADER.PIN_MEMORY:
            problems.append(
                f'DATA.DECODING_DEVICE "{device}" decodes in the training process: set DATA_LOADER.NUM_WORKERS 0 '
                f"(got {cfg.DATA_LOADER.NUM_WORKERS}; CUDA cannot run in forked workers) and "
                f"DATA_LOADER.PIN_MEMORY False (got {cfg.DATA_LOADER.PIN_MEMORY}; the frames are on the GPU already)"
            )
    return [problem for problem in problems if problem]


def build_video_opener(cfg: CfgNode) -> Callable[[str], Video]:
    """path -> Video with DATA.DECODING_BACKEND on DATA.DECODING_DEVICE, frames shrunk to
    DATA.DECODING_SHORT_SIZE; several decoder threads when DATA_LOADER.ENABLE_MULTI_THREAD_DECODE;
    a video with frames over DATA.MAX_FRAME_PIXELS refused before decoding."""
    raise_problems(decoding_problems(cfg))
    backend = resolve_backend(cfg.DATA.DECODING_BACKEND)
    return functools.partial(
        open_video,
        backend=backend,
        short_side=cfg.DATA.DECODING_SHORT_SIZE,
        num_threads=0 if cfg.DATA_LOADER.ENABLE_MULTI_THREAD_DECODE else 1,
        device=cfg.DATA.DECODING_DEVICE,
        max_frame_pixels=cfg.DATA.MAX_FRAME_PIXELS,
    )


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
        mask_generator=build_mask_generator(cfg),
        **clips_per_video(cfg, split),
        seed=cfg.RNG_SEED,
        num_retries=cfg.DATA_LOADER.NUM_RETRIES,
        decode_timeout=cfg.DATA_LOADER.DECODE_TIMEOUT,
    )


def build_loader(cfg: CfgNode, split: str, dataset: Optional[Dataset] = None) -> DataLoader:
    """A DataLoader over `dataset` (built from cfg when None) for this process.

    The batch holds TRAIN.BATCH_SIZE (train) or TEST.BATCH_SIZE (val, test) divided by
    the number of processes videos; with AUG.NUM_SAMPLE > 1 each video gives that many
    rows (see collate_clips). Training shuffles (a DistributedSampler when
    torch.distributed is initialized, else EpochShuffleSampler seeded with RNG_SEED)
    and drops the last partial batch; evaluation keeps the dataset's order and, in a
    multi-process job, gives each process whole videos (VideoShardSampler); an
    IterableDataset orders and shards itself.
    Call `set_epoch(loader, epoch)` every epoch. The loader draws its workers' base seed
    from its own generator (seeded with RNG_SEED), so iterating it leaves the global torch
    RNG (dropout, drop-path) untouched: a resumed run continues that stream exactly.
    Its workers ignore the job's stop signals, and a worker's failure or death ends the
    epoch at once (a WatchedLoader, see loader_workers.py).
    """
    check_split(split)
    dataset = build_dataset(cfg, split) if dataset is None else dataset
    is_train = split == "train"
    total = cfg.TRAIN.BATCH_SIZE if is_train else cfg.TEST.BATCH_SIZE
    batch_size = max(1, total // world_size(cfg.NUM_GPUS, cfg.NUM_SHARDS))
    common = dict(
        num_workers=cfg.DATA_LOADER.NUM_WORKERS,
        pin_memory=cfg.DATA_LOADER.PIN_MEMORY and torch.cuda.is_available(),
        collate_fn=collate_clips,
        generator=torch.Generator().manual_seed(cfg.RNG_SEED),
        worker_init_fn=shield_from_stop_signals,
    )
    batch_sampler = getattr(dataset, "batch_sampler", None)  # it makes its own batches (data/datasets/mixed.py)
    if batch_sampler is not None:
        logger.info("%s loader: %d items in %d batches of its own", split, len(dataset), len(batch_sampler))
        return WatchedLoader(dataset, batch_sampler=batch_sampler, **common)
    sampler = _sampler(dataset, is_train, cfg.RNG_SEED)
    logger.info("%s loader: %d items, %d per batch in this process", split, len(dataset), batch_size)
    return WatchedLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=is_train, **common)


def _sampler(dataset: Dataset, is_train: bool, seed: int) -> Optional[Sampler]:
    """The order of `dataset`'s items in this process (None: the dataset's own order)."""
    distributed = dist.is_available() and dist.is_initialized()
    if isinstance(dataset, IterableDataset):
        return None  # it orders and shards its items itself (e.g. PyTorchVideoDataset)
    if is_train:
        if distributed:
            return ResumableDistributedSampler(dataset, shuffle=True, seed=seed, drop_last=True)
        return EpochShuffleSampler(len(dataset), seed=seed)
    if not distributed:
        return None
    views = getattr(dataset, "views_per_video", None)
    if views is None:
        raise ValueError(
            f"{type(dataset).__name__} has no `views_per_video`, which evaluation in a multi-process job "
            "needs to give each process whole videos; give the class that property (items "
            "video * views_per_video + view, as Kinetics numbers them) or evaluate with one process"
        )
    return VideoShardSampler(len(dataset) // views, views, dist.get_rank(), dist.get_world_size())


def set_epoch(loader: DataLoader, epoch: int, start_batch: int = 0) -> None:
    """Tell the loader's sampler and dataset the epoch: a new shuffle and new random
    windows, crops and masks, reproducible from (RNG_SEED, epoch). Workers are started
    afresh each epoch (no persistent workers), so they see the new epoch.

    `start_batch` > 0 (resuming a mid-epoch checkpoint) begins the epoch after that many
    batches: the sampler skips their indices, nothing is decoded for them."""
    for part in (loader.sampler, loader.batch_sampler, loader.dataset):
        if hasattr(part, "set_epoch"):
            part.set_epoch(epoch)
    if start_batch == 0:
        return
    check_starts_part_way(loader, f"resume part-way through epoch {epoch + 1}")
    if loader.batch_size is None:  # a batch sampler of the dataset's own counts batches
        loader.batch_sampler.set_start(start_batch)
    else:
        loader.sampler.set_start(start_batch * loader.batch_size)


def check_starts_part_way(loader: DataLoader, purpose: str) -> None:
    """A clear error when the loader's sampler cannot begin an epoch part-way (`set_start`),
    as an IterableDataset's loader cannot: mid-epoch checkpoints are of no use with it."""
    if not hasattr(loader.batch_sampler if loader.batch_size is None else loader.sampler, "set_start"):
        raise ValueError(
            f"cannot {purpose}: this loader's sampler ({type(loader.sampler).__name__}) cannot skip "
            "the batches already done; with this dataset use end-of-epoch checkpoints only "
            "(TRAIN.CHECKPOINT_PERIOD_ITERS 0) and delete any checkpoint_epoch_*.iter_*.pyth"
        )
