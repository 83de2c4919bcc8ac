import pytest
import torch

from slowmask.data import Kinetics, build_dataset, build_loader, collate_clips, set_epoch


class TinyMask:
    """A (2, 4, 4) mask generator that worker processes can pickle."""

    def __call__(self, generator: torch.Generator) -> torch.Tensor:
        return torch.rand((2, 4, 4), generator=generator) < 0.5


def _masked_dataset(cfg, num_samples: int = 1) -> Kinetics:
    dataset = Kinetics.from_config(cfg, "train")
    dataset.mask_generator = TinyMask()
    dataset.num_samples = num_samples
    return dataset


def test_train_batch_flattens_repeated_samples(tiny_cfg):
    loader = build_loader(tiny_cfg, "train", dataset=_masked_dataset(tiny_cfg, num_samples=2))
    batch = next(iter(loader))
    rows = 2 * tiny_cfg.TRAIN.BATCH_SIZE
    assert batch["clip"].shape == (rows, 3, 4, 32, 32) and batch["clip"].dtype == torch.float32
    assert batch["mask"].shape == (rows, 2, 4, 4) and batch["mask"].dtype == torch.bool
    assert batch["label"].shape == batch["index"].shape == (rows,)
    assert len(batch["meta"]) == rows
    assert torch.equal(batch["index"][0::2], batch["index"][1::2])
    assert len(loader) == 16 // tiny_cfg.TRAIN.BATCH_SIZE


def test_batch_is_split_over_processes(tiny_cfg):
    tiny_cfg.NUM_GPUS, tiny_cfg.TRAIN.BATCH_SIZE = 2, 8
    assert build_loader(tiny_cfg, "train").batch_size == 4


def test_epoch_sets_the_order_and_the_clips(tiny_cfg):
    loader = build_loader(tiny_cfg, "train")

    def first_batch(epoch: int) -> dict:
        set_epoch(loader, epoch)
        return next(iter(loader))

    zero, again, one = first_batch(0), first_batch(0), first_batch(1)
    assert torch.equal(zero["index"], again["index"]) and torch.equal(zero["clip"], again["clip"])
    assert not torch.equal(zero["index"], one["index"])


def test_workers_give_the_same_batches(tiny_cfg):
    """Randomness comes from (seed, epoch, index), not from the process."""
    in_process = next(iter(build_loader(tiny_cfg, "train", dataset=_masked_dataset(tiny_cfg))))
    tiny_cfg.DATA_LOADER.NUM_WORKERS = 2
    in_workers = next(iter(build_loader(tiny_cfg, "train", dataset=_masked_dataset(tiny_cfg))))
    assert torch.equal(in_process["clip"], in_workers["clip"])
    assert torch.equal(in_process["mask"], in_workers["mask"])


def test_val_and_test_loaders_keep_order_and_every_item(tiny_cfg):
    loader = build_loader(tiny_cfg, "test")
    indices = torch.cat([batch["index"] for batch in loader])
    assert indices.tolist() == list(range(24))
    assert next(iter(build_loader(tiny_cfg, "val")))["clip"].shape == (4, 3, 4, 32, 32)


def test_dataset_names_are_looked_up_in_the_registry(tiny_cfg):
    tiny_cfg.TRAIN.DATASET = "Kinetics"
    assert isinstance(build_dataset(tiny_cfg, "train"), Kinetics)
    tiny_cfg.TRAIN.DATASET = "ucf101"
    with pytest.raises(KeyError, match="'ucf101'.*Kinetics"):
        build_dataset(tiny_cfg, "train")
    with pytest.raises(ValueError, match="split"):
        build_dataset(tiny_cfg, "training")


def test_collate_refuses_a_mix_of_masked_and_unmasked_items():
    clip = torch.zeros(3, 1, 2, 2)
    items = [
        {"clip": clip, "mask": torch.zeros(1, 1, 1, dtype=torch.bool), "label": 0, "index": 0, "meta": {}},
        {"clip": clip, "label": 0, "index": 1, "meta": {}},
    ]
    with pytest.raises(ValueError, match="mask"):
        collate_clips(items)
