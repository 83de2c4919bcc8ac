"""Training samplers whose epoch order depends on (seed, epoch) only, and which can
start an epoch part-way: a run resumed from a mid-epoch checkpoint skips the indices
the interrupted run consumed without loading them (`set_start`)."""

import itertools
from typing import Iterator

import torch
from torch.utils.data import DistributedSampler, Sampler


def checked_start(start: int, length: int) -> int:
    """`start` when it lies in [0, length], else a clear error."""
    if not 0 <= start <= length:
        raise ValueError(
            f"cannot start the epoch at position {start}: this process's share of the epoch has "
            f"{length} indices (a checkpoint from a run with another batch size or data set?)"
        )
    return start


class EpochShuffleSampler(Sampler[int]):
    """A random order of all indices, fixed by (seed, epoch): `set_epoch` reshuffles,
    and a resumed run gets the same order back (single-process training)."""

    def __init__(self, dataset_size: int, seed: int = 0) -> None:
        self.dataset_size = dataset_size
        self.seed = seed
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int) -> None:
        """A new epoch, from its first index."""
        self.epoch = epoch
        self.start = 0

    def set_start(self, start: int) -> None:
        """Begin this epoch's order at position `start` (the indices already consumed)."""
        self.start = checked_start(start, self.dataset_size)

    def __len__(self) -> int:
        return self.dataset_size - self.start

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator()
        generator.manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.dataset_size, generator=generator).tolist()[self.start:])


class ResumableDistributedSampler(DistributedSampler):
    """torch's DistributedSampler (this rank's share of a (seed, epoch) shuffle) that can
    begin an epoch at a position of this rank's share."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.start = 0

    def set_epoch(self, epoch: int) -> None:
        """A new epoch, from its first index."""
        super().set_epoch(epoch)
        self.start = 0

    def set_start(self, start: int) -> None:
        """Begin this rank's share of the epoch at position `start`."""
        self.start = checked_start(start, self.num_samples)

    def __len__(self) -> int:
        return self.num_samples - self.start

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(super().__iter__(), self.start, None)
