"""Mixed datasets (data/datasets/mixed.py): each batch from one dataset, in the configured ratio,
fixed by (seed, epoch), resumable part-way, split over ranks; OmniMAE's images repeated to
the patch's frames beside the demo videos, each with its own mask ratio."""

import os
import sys
from collections import Counter

import pytest
import torch
from torch.utils.data import Dataset

from slowmask.config import ConfigError, load_config
from slowmask.data import EvalTransform, FrameRepeat, MixedBatchSampler, MixedDataset, build_loader, set_epoch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools"))

import make_demo_images  # noqa: E402

DEMO_CFG = os.path.join(REPO, "configs", "demo", "ViT_tiny_OmniMAE_PT.yaml")
SIZES, BATCHES = [20, 50], [2, 5]


def owner(index: int, offsets=(0, SIZES[0])) -> int:
    return int(index >= offsets[1])


def test_each_dataset_gives_its_repeat_factor_of_batches_each_from_itself():
    sampler = MixedBatchSampler(SIZES, BATCHES, [1.0, 0.5], seed=3)
    batches, schedule = list(sampler), sampler.schedule()
    assert sampler.batches == [10, 5] and len(sampler) == 15
    assert Counter(schedule) == {0: 10, 1: 5}
    for batch, d in zip(batches, schedule):
        assert len(batch) == BATCHES[d] and {owner(i) for i in batch} == {d}
    # A factor of 1: every item of dataset 0 once; 0.5: half of dataset 1, no item twice.
    firsts = sorted(i for b, d in zip(batches, schedule) if d == 0 for i in b)
    seconds = [i for b, d in zip(batches, schedule) if d == 1 for i in b]
    assert firsts == list(range(20)) and len(set(seconds)) == 25


def test_a_factor_above_one_takes_another_pass_over_the_items():
    sampler = MixedBatchSampler([6], [2], [2.5], seed=0)
    items = [i for batch in sampler for i in batch]
    assert len(items) == 14
    assert sorted(items[:6]) == sorted(items[6:12]) == list(range(6)) and items[:6] != items[6:12]


def test_the_order_depends_on_seed_and_epoch_only():
    a, b = MixedBatchSampler(SIZES, BATCHES, [1, 1], seed=0), MixedBatchSampler(SIZES, BATCHES, [1, 1], seed=0)
    first = list(a)
    assert list(b) == first
    a.set_epoch(1)
    other_epoch = list(a)
    assert other_epoch != first and Counter(map(len, other_epoch)) == Counter(map(len, first))
    assert list(MixedBatchSampler(SIZES, BATCHES, [1, 1], seed=1)) != first
    a.set_epoch(0)
    assert list(a) == first


def test_a_resumed_epoch_gives_exactly_the_remaining_batches():
    sampler = MixedBatchSampler(SIZES, BATCHES, [1.0, 1.0], seed=5)
    sampler.set_epoch(2)
    full = list(sampler)
    sampler.set_start(7)
    assert len(sampler) == len(full) - 7 and list(sampler) == full[7:]
    sampler.set_epoch(3)
    assert sampler.start == 0
    with pytest.raises(ValueError, match="cannot start the epoch at position 21"):
        sampler.set_start(21)


def test_ranks_agree_on_the_dataset_of_each_batch_and_split_its_items():
    ranks = [MixedBatchSampler(SIZES, BATCHES, [1.0, 1.0], seed=0, rank=r, world_size=2) for r in (0, 1)]
    assert ranks[0].schedule() == ranks[1].schedule()
    assert ranks[0].batches == [5, 5]
    batches = [list(r) for r in ranks]
    for step, d in enumerate(ranks[0].schedule()):
        assert {owner(i) for i in batches[0][step] + batches[1][step]} == {d}
    items = [{i for b in rank for i in b} for rank in batches]
    assert not items[0] & items[1]
    assert [len(s) for s in items] == [10 + 25, 10 + 25]


class Numbers(Dataset):
    """Items whose `index` is their position offset by `start`."""

    def __init__(self, size: int, start: int) -> None:
        self.size, self.start = size, start

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict:
        return {"clip": torch.zeros(3, 1, 2, 2), "label": 0, "index": self.start + index, "meta": {}}


def test_build_loader_uses_the_batches_and_resumes_through_set_epoch():
    cfg = load_config(None, ["DATA_LOADER.NUM_WORKERS", "0", "DATA_LOADER.PIN_MEMORY", "False"])
    sampler = MixedBatchSampler([8, 12], [2, 3], [1.0, 1.0], seed=0)
    dataset = MixedDataset([Numbers(8, 0), Numbers(12, 100)], ["a", "b"], sampler)
    loader = build_loader(cfg, "train", dataset)
    set_epoch(loader, 1)
    full = [batch["index"].tolist() for batch in loader]
    assert len(full) == 8 and all(len({i >= 100 for i in b}) == 1 for b in full)
    set_epoch(loader, 1, start_batch=5)
    assert len(loader) == 3 and [batch["index"].tolist() for batch in loader] == full[5:]
    assert dataset[9]["meta"]["dataset"] == "b"


def test_frame_repeat_makes_an_image_a_clip_of_identical_frames():
    image = torch.arange(12, dtype=torch.uint8).view(1, 2, 2, 3)  # (T, H, W, 3)
    repeat = FrameRepeat(EvalTransform(2, 2, [0.0] * 3, [1 / 255] * 3), times=2)
    clip = repeat(image, None)
    assert clip.shape == (3, 2, 2, 2) and repeat.num_views == 1
    expected = image[0].permute(2, 0, 1).float()  # (3, H, W), unscaled by std 1/255
    assert torch.equal(clip[:, 0], expected) and torch.equal(clip[:, 1], expected)


def omnimae_cfg(video_dir, image_dir, *opts):
    image = ["TRAIN.DATASET", "imagefolder", "DATA.PATH_TO_DATA_DIR", image_dir, "TRAIN.BATCH_SIZE", 4,
             "DATA.NUM_FRAMES", 1, "MULTI_DATASET.REPEAT_FRAMES", 2, "DATA.DECODING_SHORT_SIZE", 0,
             "AUG.MASK_RATIO", 0.9, "AUG.MASK_WINDOW_SIZE", [1, 4, 4]]
    return load_config(DEMO_CFG, [
        "DATA.PATH_TO_DATA_DIR", video_dir, "DATA_LOADER.NUM_WORKERS", "0", "TRAIN.BATCH_SIZE", "2",
        "MULTI_DATASET.OVERRIDES", repr([["TRAIN.DATASET", "kinetics"], image]), *opts,
    ])


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("demo_images")
    make_demo_images.write_demo_images(str(out), images_per_class=4, size=64)
    return str(out)


def test_video_and_image_batches_have_their_own_shapes_and_masked_counts(demo_data_dir, image_dir):
    loader = build_loader(omnimae_cfg(demo_data_dir, image_dir, "MULTI_DATASET.REPEAT_FACTORS", "[0.25, 1.0]"), "train")
    set_epoch(loader, 0)
    batches = {batch["meta"][0]["dataset"]: batch for batch in loader}
    assert len(loader) == 4  # videos: int(0.25 * 16 // 2) = 2 batches; images: 8 // 4 = 2
    video, image = batches["0:kinetics"], batches["1:imagefolder"]
    assert video["clip"].shape == (2, 3, 8, 64, 64) and video["mask"].shape == (2, 4, 4, 4)
    assert image["clip"].shape == (4, 3, 2, 64, 64) and image["mask"].shape == (4, 1, 4, 4)
    assert torch.equal(image["clip"][:, :, 0], image["clip"][:, :, 1])
    assert video["mask"].flatten(1).sum(1).tolist() == [61] * 2  # round(0.95 * 64)
    assert image["mask"].flatten(1).sum(1).tolist() == [14] * 4  # round(0.9 * 16)


def test_bad_mixed_configs_name_the_key(demo_data_dir, image_dir):
    with pytest.raises(ValueError, match="TRAIN.DATASET mixed needs MULTI_DATASET.OVERRIDES"):
        build_loader(load_config(DEMO_CFG, ["MULTI_DATASET.OVERRIDES", "[]"]), "train")
    with pytest.raises(ValueError, match="REPEAT_FACTORS has 1 values for 2 datasets"):
        build_loader(omnimae_cfg(demo_data_dir, image_dir, "MULTI_DATASET.REPEAT_FACTORS", "[1.0]"), "train")
    no_repeat = [["TRAIN.DATASET", "imagefolder", "DATA.PATH_TO_DATA_DIR", image_dir, "DATA.NUM_FRAMES", 1]]
    unfilled = r"OVERRIDES\[0\]: clips of DATA.NUM_FRAMES 1 x MULTI_DATASET.REPEAT_FRAMES 1"
    with pytest.raises(ConfigError, match=unfilled):
        build_loader(load_config(DEMO_CFG, ["MULTI_DATASET.OVERRIDES", repr(no_repeat)]), "train")
    with pytest.raises(ConfigError, match=r"OVERRIDES\[0\]: unknown config key DATA.NUM_FRAME "):
        build_loader(load_config(DEMO_CFG, ["MULTI_DATASET.OVERRIDES", "[['DATA.NUM_FRAME', 1]]"]), "train")
    with pytest.raises(ValueError, match="TRAIN.DATASET mixed trains only"):
        MixedDataset.from_config(load_config(DEMO_CFG), "val")
    too_few = r"datasets \[1\] have fewer items per process \(\[3\]\) than one batch \(\[4\]\)"
    with pytest.raises(ValueError, match=too_few):
        MixedBatchSampler([8, 3], [2, 4], [1, 1])

