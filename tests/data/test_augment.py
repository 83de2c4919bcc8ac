"""Fine-tuning augmentations: RandAugment strings, consistency over time, reproducibility,
random erasing, and mixup / cutmix soft targets."""

import pytest
import torch

from slowmask.config import ConfigError, load_config
from slowmask.data import ClipErasing, ClipRandAugment, MixupCutmix, build_clip_transform, parse_rand_augment
from slowmask.data.augment import RandAugmentPolicy
from slowmask.data.datasets.clip_dataset import item_generator


def static_clip(frames=4, size=32):
    """uint8 (T, 3, S, S): the same textured frame T times."""
    frame = torch.randint(0, 256, (3, size, size), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    return frame.expand(frames, -1, -1, -1).contiguous()


def test_policy_strings():
    assert parse_rand_augment("rand-m7-n4-mstd0.5-inc1") == RandAugmentPolicy(7.0, 4, 0.5)
    assert parse_rand_augment("rand-m9-mstd0.5-inc1") == RandAugmentPolicy(9.0, 2, 0.5)
    for bad, message in [
        ("auto-m9", "only RandAugment strings"),
        ("rand-m9-x3-inc1", "unknown field 'x3'"),
        ("rand-n2-inc1", "gives no magnitude"),
        ("rand-m9-n2", "add -inc1"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_rand_augment(bad)


def test_a_bad_policy_string_fails_when_the_training_transform_is_built():
    cfg = load_config(None, ["AUG.ENABLE", "True", "AUG.AA_TYPE", "rand-m9-n2", "AUG.RE_MODE", "noise"])
    with pytest.raises(ConfigError, match="(?s)AUG.AA_TYPE 'rand-m9-n2'.*add -inc1.*AUG.RE_MODE is 'noise'"):
        build_clip_transform(cfg, "train")


def test_rand_augment_is_the_same_for_every_frame_and_reproducible():
    augment = ClipRandAugment(parse_rand_augment("rand-m9-n3-mstd0.5-inc1"))
    clip = static_clip()
    changed = 0
    for index in range(8):
        out = augment(clip, item_generator(0, 0, index))
        assert out.dtype == torch.uint8 and out.shape == clip.shape
        assert all(torch.equal(out[0], frame) for frame in out[1:])
        assert torch.equal(out, augment(clip, item_generator(0, 0, index)))
        changed += not torch.equal(out, clip)
    assert changed >= 4


def test_random_erasing_erases_the_same_box_in_every_frame():
    clip = torch.full((4, 3, 32, 32), 7.0)
    out = ClipErasing(1.0, "const", max_count=1)(clip, item_generator(0, 0, 1))
    erased = out == 0.0
    assert erased.any() and all(torch.equal(erased[0], e) for e in erased[1:])
    assert torch.equal(ClipErasing(0.0)(clip, item_generator(0, 0, 1)), clip)
    with pytest.raises(ValueError, match="AUG.RE_MODE 'noise'"):
        ClipErasing(0.5, "noise")


def test_training_transform_applies_them_per_clip(demo_data_dir):
    cfg = load_config(None, ["AUG.ENABLE", "True", "AUG.AA_TYPE", "rand-m7-n2-mstd0.5-inc1", "AUG.RE_PROB", "0.5",
                             "DATA.TRAIN_CROP_SIZE", "32"])
    transform = build_clip_transform(cfg, "train")
    assert transform.rand_augment is not None and transform.erasing is not None
    frames = static_clip(4, 48).permute(0, 2, 3, 1)  # (T, H, W, 3)
    out = transform(frames, item_generator(0, 0, 3))
    assert out.shape == (3, 4, 32, 32) and torch.isfinite(out).all()
    eval_transform = build_clip_transform(cfg, "val")
    assert eval_transform.rand_augment is None and eval_transform.erasing is None


@pytest.mark.parametrize("switch_prob", [0.0, 1.0])
def test_mixup_and_cutmix_targets_are_soft_and_sum_to_one(switch_prob):
    torch.manual_seed(0)
    mixer = MixupCutmix(num_classes=5, prob=1.0, switch_prob=switch_prob, label_smoothing=0.1)
    clip, labels = torch.randn(4, 3, 4, 16, 16), torch.tensor([0, 1, 2, 4])
    mixed, target = mixer(clip, labels)
    assert mixed.shape == clip.shape and target.shape == (4, 5)
    assert torch.allclose(target.sum(1), torch.ones(4))
    assert (target > 0.1 / 5 + 1e-6).sum(1).ge(2).all()  # two classes mixed in every row
    if switch_prob == 1.0:  # cutmix: one box, the same in every frame and channel
        changed = (mixed != clip).any(dim=1)  # (B, T, H, W)
        assert all(torch.equal(changed[:, 0], changed[:, t]) for t in range(4))


def test_without_mixing_targets_are_smoothed_one_hot():
    mixer = MixupCutmix(num_classes=4, prob=0.0, label_smoothing=0.2)
    clip = torch.randn(2, 3, 2, 8, 8)
    mixed, target = mixer(clip, torch.tensor([1, 3]))
    assert torch.equal(mixed, clip)
    assert torch.allclose(target, torch.tensor([[0.05, 0.85, 0.05, 0.05], [0.05, 0.05, 0.05, 0.85]]))
