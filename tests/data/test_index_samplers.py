"""Samplers and loaders that resume part-way through an epoch, and leave the global RNG alone."""

import pytest
import torch

from slowmask.data import build_loader, set_epoch
from slowmask.data.build import check_starts_part_way
from slowmask.data.index_samplers import EpochShuffleSampler, ResumableDistributedSampler


def test_epoch_shuffle_sampler_starts_part_way_and_a_new_epoch_starts_at_0():
    sampler = EpochShuffleSampler(10, seed=3)
    sampler.set_epoch(2)
    order = list(sampler)
    sampler.set_start(4)
    assert list(sampler) == order[4:] and len(sampler) == 6
    sampler.set_epoch(3)
    assert len(sampler) == 10 and sorted(sampler) == list(range(10))


def test_distributed_sampler_skips_within_this_ranks_share():
    dataset = list(range(11))
    sampler = ResumableDistributedSampler(dataset, num_replicas=2, rank=1, shuffle=True, seed=5, drop_last=True)
    sampler.set_epoch(1)
    share = list(sampler)
    assert len(share) == 5
    sampler.set_start(2)
    assert list(sampler) == share[2:] and len(sampler) == 3
    sampler.set_epoch(2)
    assert len(sampler) == 5


def test_a_start_beyond_the_epoch_is_a_clear_error():
    with pytest.raises(ValueError, match="cannot start the epoch at position 11: .* 10 indices"):
        EpochShuffleSampler(10).set_start(11)


def test_loader_resumes_with_the_remaining_batches_without_loading_the_others(tiny_cfg):
    loader = build_loader(tiny_cfg, "train")
    set_epoch(loader, 1)
    full = [batch["index"] for batch in loader]
    set_epoch(loader, 1, start_batch=2)
    assert len(loader) == len(full) - 2
    rest = [batch["index"] for batch in loader]
    assert len(rest) == len(full) - 2 and all(torch.equal(a, b) for a, b in zip(rest, full[2:]))
    set_epoch(loader, 1)
    assert len(loader) == len(full)


def test_resuming_part_way_needs_a_sampler_that_can_skip(tiny_cfg):
    loader = build_loader(tiny_cfg, "val")
    with pytest.raises(ValueError, match="cannot resume part-way through epoch 1: .*SequentialSampler"):
        set_epoch(loader, 0, start_batch=1)
    with pytest.raises(ValueError, match="cannot write mid-epoch .*TRAIN.CHECKPOINT_PERIOD_ITERS 0"):
        check_starts_part_way(loader, "write mid-epoch checkpoints")


@pytest.mark.parametrize("workers", [0, 1])
def test_iterating_the_loader_leaves_the_global_torch_rng_alone(tiny_cfg, workers):
    tiny_cfg.DATA_LOADER.NUM_WORKERS = workers
    loader = build_loader(tiny_cfg, "train")
    torch.manual_seed(0)
    before = torch.get_rng_state()
    next(iter(loader))
    assert torch.equal(torch.get_rng_state(), before)
