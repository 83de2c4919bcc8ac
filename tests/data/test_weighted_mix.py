"""Weighted mixing (MULTI_DATASET.WEIGHTS, data/datasets/mixed.py): every batch holds items
of all the datasets in the weights' proportions, fixed by (seed, epoch), resumable part-way,
each rank its own share; the config refuses what cannot be stacked."""

import os
from collections import Counter

import pytest

from slowmask.config import ConfigError, load_config
from slowmask.data import MixedDataset, WeightedMixSampler, build_loader, set_epoch
from slowmask.data.datasets.mixed import exact_counts

from tool_scripts import REPO

VJEPA2_WEIGHTS = [0.335, 0.100, 0.565]  # K710, SSv2, HowTo100M
SIZES = [1000, 500, 4000]
OFFSETS = [0, 1000, 1500]


def source(index: int) -> int:
    return max(d for d, offset in enumerate(OFFSETS) if offset <= index)


def test_each_epoch_gives_every_dataset_its_weight_within_one_item():
    sampler = WeightedMixSampler(SIZES, 16, VJEPA2_WEIGHTS, seed=0)
    sampler.set_epoch(2)
    batches = list(sampler)
    assert len(batches) == 5500 // 16 == 343 and all(len(batch) == 16 for batch in batches)
    counts = Counter(source(i) for batch in batches for i in batch)
    total = 343 * 16
    for d, weight in enumerate(VJEPA2_WEIGHTS):
        assert abs(counts[d] - weight * total) <= 1, (d, counts[d], weight * total)
    # Only 1000 K710 items for 1838 draws: a second pass, no item a third time.
    assert set(Counter(i for batch in batches for i in batch if source(i) == 0).values()) <= {1, 2}


def test_batches_mix_the_sources():
    sampler = WeightedMixSampler(SIZES, 16, VJEPA2_WEIGHTS, seed=0)
    per_batch = [Counter(source(i) for i in batch) for batch in sampler]
    assert all(len(counts) >= 2 for counts in per_batch)
    # HowTo100M's 0.565 of 16 is 9.04 items per batch on average, over 343 batches.
    mean = sum(counts[2] for counts in per_batch) / len(per_batch)
    assert abs(mean - 0.565 * 16) <= 0.01


def test_the_order_depends_on_seed_and_epoch_only():
    first = WeightedMixSampler(SIZES, 16, VJEPA2_WEIGHTS, seed=5)
    again = WeightedMixSampler(SIZES, 16, VJEPA2_WEIGHTS, seed=5)
    first.set_epoch(1)
    again.set_epoch(1)
    assert list(first) == list(again)
    again.set_epoch(2)
    assert list(first) != list(again)


def test_a_resumed_epoch_gives_exactly_the_remaining_batches():
    sampler = WeightedMixSampler(SIZES, 16, VJEPA2_WEIGHTS, seed=1)
    sampler.set_epoch(3)
    full = list(sampler)
    sampler.set_start(100)
    assert len(sampler) == 243 and list(sampler) == full[100:]


def test_ranks_read_their_own_share():
    ranks = [WeightedMixSampler(SIZES, 8, VJEPA2_WEIGHTS, seed=0, rank=r, world_size=2) for r in range(2)]
    items = [[i for batch in sampler for i in batch] for sampler in ranks]
    assert len(items[0]) == len(items[1]) == (500 + 250 + 2000) // 8 * 8
    # In a pass over a dataset the two ranks read different halves of it: K710 and SSv2 take
    # more than a pass (a rank reads 919 of 500 and 275 of 250), HowTo100M part of one (1550 of 2000).
    assert ranks[0].items_per_dataset == ranks[1].items_per_dataset == [919, 275, 1550]
    for d, size in enumerate(SIZES):
        first_pass = [set(sampler.dataset_items(d)[: size // 2]) for sampler in ranks]
        assert not first_pass[0] & first_pass[1]
        if d < 2:
            assert first_pass[0] | first_pass[1] == set(range(OFFSETS[d], OFFSETS[d] + size))


def test_exact_counts_split_by_largest_remainder():
    assert exact_counts([0.335, 0.1, 0.565], 10) == [3, 1, 6]
    assert exact_counts([1, 1, 1], 10) == [4, 3, 3]
    assert sum(exact_counts(VJEPA2_WEIGHTS, 5488)) == 5488


def test_bad_sampler_arguments():
    with pytest.raises(ValueError, match=r"MULTI_DATASET.WEIGHTS must all be > 0, got \[1.0, 0.0\]"):
        WeightedMixSampler([10, 10], 2, [1.0, 0.0])
    with pytest.raises(ValueError, match="no item for each of the 4 processes"):
        WeightedMixSampler([10, 3], 2, [1, 1], world_size=4)


def mixed_cfg(video_dir, *opts):
    parts = [["TRAIN.DATASET", "kinetics"], ["TRAIN.DATASET", "kinetics"]]
    return load_config(os.path.join(REPO, "configs", "demo", "ViT_tiny_MAE_PT.yaml"), [
        "TRAIN.DATASET", "mixed", "DATA.PATH_TO_DATA_DIR", video_dir, "DATA_LOADER.NUM_WORKERS", "0",
        "TRAIN.BATCH_SIZE", "4", "MULTI_DATASET.OVERRIDES", repr(parts), *opts,
    ])


def test_loader_batches_hold_items_of_every_dataset(demo_data_dir):
    loader = build_loader(mixed_cfg(demo_data_dir, "MULTI_DATASET.WEIGHTS", "[0.25, 0.75]"), "train")
    assert isinstance(loader.batch_sampler, WeightedMixSampler)
    set_epoch(loader, 0)
    assert len(loader) == 32 // 4 and loader.batch_sampler.items_per_dataset == [8, 24]
    names = [[meta["dataset"] for meta in batch["meta"]] for batch in loader]
    assert Counter(name for batch in names for name in batch) == {"0:kinetics": 8, "1:kinetics": 24}
    assert sum(len(set(batch)) == 2 for batch in names) == 6  # of 8 batches at seed 0 (about 0.68 x 8 expected)


def test_bad_weighted_configs_name_the_key(demo_data_dir):
    with pytest.raises(ConfigError, match="MULTI_DATASET.WEIGHTS has 3 values for 2 datasets"):
        MixedDataset.from_config(mixed_cfg(demo_data_dir, "MULTI_DATASET.WEIGHTS", "[1, 1, 1]"), "train")
    both = mixed_cfg(demo_data_dir, "MULTI_DATASET.WEIGHTS", "[1, 1]", "MULTI_DATASET.REPEAT_FACTORS", "[1, 1]")
    with pytest.raises(ConfigError, match="set one of them"):
        MixedDataset.from_config(both, "train")
    parts = repr([["TRAIN.DATASET", "kinetics"], ["TRAIN.DATASET", "kinetics", "DATA.TRAIN_CROP_SIZE", 32]])
    shapes = mixed_cfg(demo_data_dir, "MULTI_DATASET.WEIGHTS", "[1, 1]", "MULTI_DATASET.OVERRIDES", parts)
    with pytest.raises(ConfigError, match=r"OVERRIDES\[1\] changes the clip or batch .*\[8, 32, \(4, 4, 4\), 4\] instead of \[8, 64, \(4, 4, 4\), 4\]"):
        MixedDataset.from_config(shapes, "train")
