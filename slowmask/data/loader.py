"""Building datasets and data loaders from the config."""

import logging
import signal
from typing import Optional

import torch
import torch.distributed as dist
from fvcore.common.config import CfgNode
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler

from slowmask.utils.stop_signals import STOP_SIGNALS

from .build import check_split
from .collate import collate_clips
from .custom_modules import import_custom_modules
from .registry import DATASET_REGISTRY
from .samplers import EpochShuffleSampler, ResumableDistributedSampler, VideoShardSampler

__all__ = [
    "EpochShuffleSampler", "build_dataset", "build_loader", "check_starts_part_way", "ignore_stop_signals",
    "processes", "set_epoch",
]

logger = logging.getLogger(__name__)


def ignore_stop_signals(worker_id: int) -> None:
    """Loader workers ignore the stop signals (SIGTERM, SIGUSR1, SIGUSR2). SLURM sends
    them to every process of a preempted job; the training process then writes a checkpoint after its current step,
    which needs its workers' batches, and shuts them down when it exits. (torch's own
    worker handler would end a worker at once, and the run with it, before the checkpoint.)"""
    for number in STOP_SIGNALS:
        signal.signal(number, signal.SIG_IGN)


def _dataset_class(name: str) -> type:
    """The registered class called `name`; case is ignored ("kinetics" finds Kinetics)."""
    matches = [cls for key, cls in DATASET_REGISTRY if key.lower() == name.lower()]
    if not matches:
        known = ", ".join(sorted(key for key, _ in DATASET_REGISTRY))
        raise KeyError(
            f"no dataset {name!r} is registered; registered: {known}. To add your own, decorate its "
            "class with @DATASET_REGISTRY.register() (from slowmask.data import DATASET_REGISTRY; "
            "slowmask.data.VideoDataset is a base class) and name its module or .py file in "
            "DATA.CUSTOM_MODULES"
        )
    return matches[0]


def build_dataset(cfg: CfgNode, split: str) -> Dataset:
    """The dataset TRAIN.DATASET (split "train") or TEST.DATASET ("val", "test") names,
    after importing DATA.CUSTOM_MODULES (where user datasets register themselves)."""
    check_split(split)
    import_custom_modules(cfg.DATA.CUSTOM_MODULES)
    name = cfg.TRAIN.DATASET if split == "train" else cfg.TEST.DATASET
    return _dataset_class(name).from_config(cfg, split)


def processes(cfg: CfgNode) -> int:
    """Training processes in the job: max(1, NUM_GPUS) per machine times NUM_SHARDS."""
    return max(1, cfg.NUM_GPUS) * cfg.NUM_SHARDS


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
    """
    check_split(split)
    dataset = build_dataset(cfg, split) if dataset is None else dataset
    is_train = split == "train"
    total = cfg.TRAIN.BATCH_SIZE if is_train else cfg.TEST.BATCH_SIZE
    batch_size = max(1, total // processes(cfg))
    sampler = _sampler(dataset, is_train, cfg.RNG_SEED)
    logger.info("%s loader: %d items, %d per batch in this process", split, len(dataset), batch_size)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=cfg.DATA_LOADER.NUM_WORKERS,
        pin_memory=cfg.DATA_LOADER.PIN_MEMORY and torch.cuda.is_available(),
        drop_last=is_train,
        collate_fn=collate_clips,
        generator=torch.Generator().manual_seed(cfg.RNG_SEED),
        worker_init_fn=ignore_stop_signals,
    )


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
    for part in (loader.sampler, loader.dataset):
        if hasattr(part, "set_epoch"):
            part.set_epoch(epoch)
    if start_batch == 0:
        return
    check_starts_part_way(loader, f"resume part-way through epoch {epoch + 1}")
    loader.sampler.set_start(start_batch * loader.batch_size)


def check_starts_part_way(loader: DataLoader, purpose: str) -> None:
    """A clear error when the loader's sampler cannot begin an epoch part-way (`set_start`),
    as an IterableDataset's loader cannot: mid-epoch checkpoints are of no use with it."""
    if not hasattr(loader.sampler, "set_start"):
        raise ValueError(
            f"cannot {purpose}: this loader's sampler ({type(loader.sampler).__name__}) cannot skip "
            "the batches already done; with this dataset use end-of-epoch checkpoints only "
            "(TRAIN.CHECKPOINT_PERIOD_ITERS 0) and delete any checkpoint_epoch_*.iter_*.pyth"
        )
