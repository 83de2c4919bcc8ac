import pytest
import torch

from slowmask.config import get_cfg
from slowmask.masking import CubeMaskGenerator, build_mask_generator


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
    with pytest.raises(ValueError, match="AUG.MASK_WINDOW_SIZE must be three positive integers"):
        build_mask_generator(_cfg(MASK_WINDOW_SIZE=[7, 7]))


@pytest.mark.parametrize(
    "aug, mask, name, source",
    [
        ({"MASK_TUBE": True}, {}, "tube", "AUG.MASK_TUBE"),
        ({"MASK_FRAMES": True}, {}, "frame", "AUG.MASK_FRAMES"),
        ({}, {"MAE_RND_MASK": True}, "random", "MASK.MAE_RND_MASK"),
        ({"MASK_TYPE": "spiral"}, {}, "spiral", "AUG.MASK_TYPE"),
    ],
)
def test_unregistered_names(aug, mask, name, source):
    cfg = _cfg(**aug)
    for key, value in mask.items():
        cfg.MASK[key] = value
    with pytest.raises(ValueError, match=rf"'{name}' \(from .*{source}.*registered: 'block', 'cube'"):
        build_mask_generator(cfg)
