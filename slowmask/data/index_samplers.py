"""Samplers. Training samplers' epoch order depends on (seed, epoch) only, and they can
start an epoch part-way: a run resumed from a mid-epoch checkpoint skips the indices
the interrupted run consumed without loading them (`set_start`). Positions count items,
not batches, so a run resumed with another batch size starts at the first item not yet
trained (MixedBatchSampler, whose items are batches, excepted). The evaluation
sampler gives each process of a job whole videos, each exactly once."""

import abc
import itertools
from typing import Iterator

import torch
from torch.utils.data import DistributedSampler, Sampler


def checked_start(start: int, length: int) -> int:
    """`start` when it lies in [0, length], else a clear error."""
    if not 0 <= start <= length:
        raise ValueError(
            f"cannot start the epoch at position {start}: this process's share of the epoch has "
            f"{length} indices (a checkpoint from a run with another data set or number of processes?)"
        )
    return start


class ResumableOrder(abc.ABC):
    """What a training sampler's epoch order shares: the epoch it is for, and the position
    it begins at. A subclass gives `epoch_length`, the positions of a whole epoch (this
    process's share), and skips the first `start` of them when iterated."""

    epoch = 0
    start = 0

    @abc.abstractmethod
    def epoch_length(self) -> int:
        """Positions of a whole epoch."""

    def set_epoch(self, epoch: int) -> None:
        """A new epoch, from its first position."""
        self.epoch = epoch
        self.start = 0

    def set_start(self, start: int) -> None:
        """Begin this epoch at position `start` (the positions already consumed)."""
        self.start = checked_start(start, self.epoch_length())

    def __len__(self) -> int:
        return self.epoch_length() - self.start


class EpochShuffleSampler(ResumableOrder, Sampler[int]):
    """A random order of all indices, fixed by (seed, epoch): `set_epoch` reshuffles,
    and a resumed run gets the same order back (single-process training)."""

    def __init__(self, dataset_size: int, seed: int = 0) -> None:
        self.dataset_size = dataset_size
        self.seed = seed

    def epoch_length(self) -> int:
        return self.dataset_size

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator()
        generator.manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.dataset_size, generator=generator).tolist()[self.start:])


class ResumableDistributedSampler(ResumableOrder, DistributedSampler):
    """torch's DistributedSampler (this rank's share of a (seed, epoch) shuffle) that can
    begin an epoch at a position of this rank's share."""

    def epoch_length(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(super().__iter__(), self.start, None)


class VideoShardSampler(Sampler[int]):
    """This rank's share of an evaluation split, by whole videos: videos rank,
    rank + world_size, ..., each with its `views_per_video` consecutive items in view
    order (item = video * views_per_video + view, as `Kinetics` numbers them).

    Whole videos, so that a rank combines a video's views in the order one process
    does (the per-video scores are then bit-identical) and only one row per video has to
    be gathered; no padding, so no video is counted twice. Ranks may get one video more
    than others: evaluation has no collective per batch.
    """

    def __init__(self, num_videos: int, views_per_video: int, rank: int = 0, world_size: int = 1) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} lies outside [0, world size {world_size})")
        if views_per_video < 1:
            raise ValueError(f"a video needs at least one view, got views_per_video {views_per_video}")
        self.num_videos = num_videos
        self.views_per_video = views_per_video
        self.rank = rank
        self.world_size = world_size

    def videos(self) -> range:
        return range(self.rank, self.num_videos, self.world_size)

    def __len__(self) -> int:
        return len(self.videos()) * self.views_per_video

    def __iter__(self) -> Iterator[int]:
        views = self.views_per_video
        return (video * views + view for video in self.videos() for view in range(views))
