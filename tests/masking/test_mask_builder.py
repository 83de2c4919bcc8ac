import pytest
import torch

from slowmask.config import get_cfg
from slowmask.masking import (
    CubeMaskGenerator,
    FrameMaskGenerator,
    RandomMaskGenerator,
    TubeMaskGenerator,
    build_mask_generator,
)


def _cfg(**aug):
    cfg = get_cfg()
    cfg.MASK.ENABLE = True
    cfg.AUG.MASK_RATIO = 0.4
    for key, value in aug.items():
        cfg.AUG[key] = value
    return cfg


def test_none_without_masking():
    assert build_mask_generator(get_cfg()) is None


def test_default_is_cube_on_the_window():
    generator = build_mask_generator(_cfg())
    assert isinstance(generator, CubeMaskGenerator)
    mask = generator(torch.Generator().manual_seed(0))
    assert mask.shape == (8, 7, 7) and int(mask.sum()) == round(0.4 * 392)


def test_block_and_max_patches_per_block():
    cfg = _cfg(MASK_TYPE="block", MASK_WINDOW_SIZE=[1, 14, 14], MAX_MASK_PATCHES_PER_BLOCK=30)
    generator = build_mask_generator(cfg)
    assert isinstance(generator, CubeMaskGenerator)
    assert (generator.max_block_area, generator.min_block_area) == (30, 6)


@pytest.mark.parametrize("ratio", [0.0, 1.0, -0.1, 1.5])
def test_bad_ratio(ratio):
    with pytest.raises(ValueError, match=r"AUG.MASK_RATIO must lie in \(0, 1\)"):
        build_mask_generator(_cfg(MASK_RATIO=ratio))


def test_bad_window():
    with pytest.raises(ValueError, match="AUG.MASK_WINDOW_SIZE must be three positive sizes"):
        build_mask_generator(_cfg(MASK_WINDOW_SIZE=[7, 7]))


@pytest.mark.parametrize(
    "aug, mask, cls",
    [
        ({"MASK_TUBE": True}, {}, TubeMaskGenerator),
        ({"MASK_FRAMES": True}, {}, FrameMaskGenerator),
        ({}, {"MAE_RND_MASK": True}, RandomMaskGenerator),
        ({"MASK_TYPE": "tube", "MASK_FRAMES": True}, {}, TubeMaskGenerator),
    ],
)
def test_pyslowfast_flags_select_generators(aug, mask, cls):
    cfg = _cfg(**aug)
    for key, value in mask.items():
        cfg.MASK[key] = value
    assert isinstance(build_mask_generator(cfg), cls)


def test_unregistered_name():
    with pytest.raises(ValueError, match=r"AUG.MASK_TYPE 'spiral' is not a registered mask generator; registered: 'block', 'cube', 'frame'"):
        build_mask_generator(_cfg(MASK_TYPE="spiral"))


@pytest.mark.parametrize("patch_2d, frames, expected", [(False, 16, (8, 14, 14)), (True, 1, (1, 14, 14))])
def test_mae_rnd_mask_masks_single_tokens_as_pyslowfast(patch_2d, frames, expected):
    cfg = _cfg(MASK_RATIO=0.9)  # AUG.MASK_WINDOW_SIZE stays PySlowFast's default [8, 7, 7]
    cfg.MASK.MAE_RND_MASK = True
    cfg.DATA.NUM_FRAMES, cfg.DATA.TRAIN_CROP_SIZE = frames, 224
    cfg.MVIT.PATCH_2D = patch_2d
    cfg.MVIT.PATCH_STRIDE = [16, 16] if patch_2d else [2, 16, 16]
    generator = build_mask_generator(cfg)
    assert isinstance(generator, RandomMaskGenerator) and generator.grid == expected


def test_image_with_pyslowfast_video_window_masks_the_token_grid():
    cfg = _cfg(MASK_TYPE="block")  # AUG.MASK_WINDOW_SIZE stays [8, 7, 7], as in PySlowFast's image yaml
    cfg.DATA.NUM_FRAMES, cfg.DATA.TRAIN_CROP_SIZE = 1, 224
    cfg.MVIT.PATCH_2D, cfg.MVIT.PATCH_STRIDE = True, [16, 16]
    assert build_mask_generator(cfg).grid == (1, 14, 14)
