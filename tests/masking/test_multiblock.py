"""V-JEPA's multi-block masks: block counts, shapes, temporal extent, determinism, the
registry's union for MaskFeat / MAE, and equal token counts across a batch."""

import logging
import math
import os

import pytest
import torch

from slowmask.config import get_cfg, load_config
from slowmask.masking import (
    MultiBlockMask,
    MultiBlockUnionMask,
    build_mask_generator,
    build_mask_sets,
    context_indices,
    equal_count_indices,
    random_equal_count_indices,
)
from slowmask.methods import build_model

from tool_scripts import REPO


def _draw(generator, seed=0):
    return generator(torch.Generator().manual_seed(seed))


def _top_left_corners(mask):
    """Units of `mask` (t, h, w) with no masked unit above or to the left: one per block
    when blocks neither overlap nor touch."""
    above = torch.nn.functional.pad(mask[:, :-1, :], (0, 0, 1, 0))
    left = torch.nn.functional.pad(mask[:, :, :-1], (1, 0))
    return int((mask & ~above & ~left).sum())


def test_block_count_and_volume_on_a_sparse_grid():
    # Area int(1.6e-5 * 1000 * 1000) = 16 units: 3x5 .. 5x3 blocks on a 1000x1000 grid rarely touch.
    mask_set = MultiBlockMask((2, 1000, 1000), num_blocks=8, spatial_scale=1.6e-5)
    for seed in range(3):
        mask = _draw(mask_set, seed)
        span, height, width = mask_set.block_shape(torch.Generator().manual_seed(seed))
        assert span == 2
        assert int(mask.sum()) == 8 * span * height * width, seed
        assert _top_left_corners(mask[:1]) == 8, seed


@pytest.mark.parametrize("scale, low, high", [(0.15, 0.75, 1.5), (0.7, 0.75, 1.5), (0.3, 0.3, 3.0)])
def test_block_shapes_follow_scale_and_aspect_ratio_within_rounding(scale, low, high):
    grid = (8, 14, 14)
    area = int(scale * 14 * 14)  # 29 and 137 units for V-JEPA 2's two sets
    mask_set = MultiBlockMask(grid, 1, scale, (low, high))
    generator = torch.Generator().manual_seed(0)
    shapes = [mask_set.block_shape(generator) for _ in range(200)]
    for span, height, width in shapes:
        assert span == 8
        # Each side is round(sqrt(area * ratio)) or round(sqrt(area / ratio)), capped at 14.
        assert math.sqrt(area * low) - 0.5 <= height <= min(14, math.sqrt(area * high) + 0.5)
        assert math.sqrt(area / high) - 0.5 <= width <= min(14, math.sqrt(area / low) + 0.5)
        if height < 14 and width < 14:
            # The area of two rounded sides: within (sqrt(area) +- 0.5)^2-style rounding of area.
            assert abs(height * width - area) <= math.sqrt(area * high) + 0.25, (height, width)
    heights = {h for _, h, _ in shapes}
    assert len(heights) >= 2  # the aspect ratio is drawn, not fixed


def test_one_block_is_one_box_at_the_drawn_shape():
    mask_set = MultiBlockMask((8, 14, 14), 1, 0.15)
    for seed in range(5):
        mask = _draw(mask_set, seed)
        span, height, width = mask_set.block_shape(torch.Generator().manual_seed(seed))
        t, h, w = [axis.nonzero().flatten() for axis in (mask.any(2).any(1), mask.any(2).any(0), mask.any(1).any(0))]
        assert (len(t), len(h), len(w)) == (span, height, width)
        assert int(mask.sum()) == span * height * width  # its bounding box is full


def test_full_temporal_extent_and_a_shorter_span():
    full = _draw(MultiBlockMask((8, 14, 14), 8, 0.15, temporal_scale=1.0), 3)
    assert torch.equal(full.all(dim=0), full.any(dim=0))  # every masked place is masked at every t
    half = _draw(MultiBlockMask((8, 14, 14), 1, 0.15, temporal_scale=0.5), 3)
    assert half.any(2).any(1).sum() == 4  # int(0.5 * 8) consecutive indices
    frames = half.any(2).any(1).nonzero().flatten()
    assert torch.equal(frames, torch.arange(int(frames[0]), int(frames[0]) + 4))


def test_random_only_through_the_generator():
    sets = build_mask_sets(get_cfg(), (8, 14, 14))
    union = MultiBlockUnionMask(sets)
    torch.manual_seed(0)
    first = [_draw(union, seed) for seed in range(4)]
    torch.manual_seed(1)
    again = [_draw(union, seed) for seed in range(4)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], first[1])


def test_vjepa2_defaults_and_the_union_they_mask():
    sets = build_mask_sets(get_cfg(), (8, 14, 14))
    assert [(s.num_blocks, s.spatial_scale, s.aspect_ratio, s.temporal_scale) for s in sets] == [
        (8, 0.15, (0.75, 1.5), 1.0),
        (2, 0.7, (0.75, 1.5), 1.0),
    ]
    union = MultiBlockUnionMask(sets)
    fractions = torch.tensor([float(_draw(union, seed).float().mean()) for seed in range(50)])
    # Two 70 % blocks alone hide 70-100 % of the grid; the union never hides all of it.
    assert 0.7 <= float(fractions.min()) and float(fractions.max()) < 1.0


def test_every_draw_leaves_context_and_a_grid_too_small_is_named():
    tight = MultiBlockMask((1, 2, 2), 4, 1.0)  # every block covers the grid
    with pytest.raises(ValueError, match="covered the whole grid in 100 draws, leaving no context"):
        _draw(tight)


@pytest.mark.parametrize(
    "args, message",
    [
        (((8, 14, 14), 0, 0.15), "MULTIBLOCK_NUM_BLOCKS must be at least 1"),
        (((8, 14, 14), 2, 1.5), r"MULTIBLOCK_SPATIAL_SCALE must lie in \(0, 1\], got 1.5"),
        (((8, 14, 14), 2, 0.2, (1.5, 0.75)), "MULTIBLOCK_ASPECT_RATIO must be"),
        (((8, 14, 14), 2, 0.2, (0.75, 1.5), 0.0), "MULTIBLOCK_TEMPORAL_SCALE must lie in"),
    ],
)
def test_bad_arguments_name_the_key(args, message):
    with pytest.raises(ValueError, match=message):
        MultiBlockMask(*args)


def test_per_set_keys_must_have_one_entry_per_set():
    cfg = get_cfg()
    cfg.MASK.MULTIBLOCK_SPATIAL_SCALE = [0.15]
    with pytest.raises(ValueError, match=r"one entry per mask set each, got \[8, 2\], \[0.15\], \[1.0, 1.0\]"):
        build_mask_sets(cfg, (8, 14, 14))


def _multiblock_cfg(ratio=0.0):
    cfg = get_cfg()
    cfg.MASK.ENABLE = True
    cfg.AUG.MASK_TYPE = "multiblock"
    cfg.AUG.MASK_WINDOW_SIZE = [8, 14, 14]
    cfg.AUG.MASK_RATIO = ratio
    return cfg


def test_registry_entry_masks_the_union_and_ignores_the_ratio(caplog):
    with caplog.at_level(logging.WARNING):
        quiet = build_mask_generator(_multiblock_cfg())
    assert isinstance(quiet, MultiBlockUnionMask) and quiet.grid == (8, 14, 14)
    assert "AUG.MASK_RATIO" not in caplog.text
    with caplog.at_level(logging.WARNING):
        build_mask_generator(_multiblock_cfg(0.9))
    assert "AUG.MASK_RATIO 0.9 is ignored by AUG.MASK_TYPE 'multiblock'" in caplog.text
    seeded = [torch.Generator().manual_seed(7) for _ in range(2)]
    sets = [mask_set(seeded[0]) for mask_set in quiet.sets]
    assert torch.equal(quiet(seeded[1]), sets[0] | sets[1])


def test_equal_counts_keep_each_items_first_tokens():
    masks = torch.zeros(3, 8, dtype=torch.bool)
    masks[0, [1, 2, 5]] = True  # 3 masked, 5 visible
    masks[1, [0, 7]] = True  # 2 masked, 6 visible
    masks[2, [3, 4, 6, 7]] = True  # 4 masked, 4 visible
    context, predicted = equal_count_indices(masks)
    assert context.tolist() == [[0, 3, 4, 6], [1, 2, 3, 4], [0, 1, 2, 5]]
    assert predicted.tolist() == [[1, 2], [0, 7], [3, 4]]


def test_equal_counts_of_multiblock_masks_across_a_batch():
    union = MultiBlockUnionMask(build_mask_sets(get_cfg(), (8, 14, 14)))
    masks = torch.stack([_draw(union, seed) for seed in range(6)])
    context, predicted = equal_count_indices(masks)
    flat = masks.flatten(1)
    assert context.shape == (6, int((~flat).sum(1).min())) and predicted.shape == (6, int(flat.sum(1).min()))
    assert not flat.gather(1, context).any() and flat.gather(1, predicted).all()
    assert (context.diff(dim=1) > 0).all() and (predicted.diff(dim=1) > 0).all()


def _share_per_frame(index, frames, tokens_per_frame):
    """Fraction of the (B, K) positions `index` in each of the grid's frames."""
    counts = torch.bincount(index.flatten() // tokens_per_frame, minlength=frames).float()
    return counts / counts.sum()


def test_random_equal_counts_keep_every_frames_share_where_the_first_ones_starve_the_last():
    # The demo's grid: 4x4x4 tokens, V-JEPA 2's short-range set (8 blocks of 15 %), batches of 8.
    (short_range, _) = build_mask_sets(get_cfg(), (4, 4, 4))
    generator = torch.Generator().manual_seed(0)
    batches = [torch.stack([short_range(generator) for _ in range(8)]) for _ in range(40)]
    first = [equal_count_indices(masks) for masks in batches]
    drawn = [random_equal_count_indices(masks, generator) for masks in batches]
    for (context, predicted), masks in zip(drawn, batches):
        flat = masks.flatten(1)
        assert context.shape == (8, int((~flat).sum(1).min())) and predicted.shape == (8, int(flat.sum(1).min()))
        assert not flat.gather(1, context).any() and flat.gather(1, predicted).all()
        assert (context.diff(dim=1) > 0).all() and (predicted.diff(dim=1) > 0).all()
    # Every block spans the 4 frames, so each frame holds a quarter of the visible and masked tokens.
    for part in (0, 1):
        first_share = _share_per_frame(torch.cat([pair[part].flatten() for pair in first]), 4, 16)
        drawn_share = _share_per_frame(torch.cat([pair[part].flatten() for pair in drawn]), 4, 16)
        assert first_share[3] < 0.10  # the first ones keep few of the last frame's tokens
        assert torch.allclose(drawn_share, torch.full((4,), 0.25), atol=0.02)


def test_random_equal_counts_follow_the_generator():
    masks = torch.zeros(3, 8, dtype=torch.bool)
    masks[0, [1, 2, 5]] = True
    masks[1, [0, 7]] = True
    masks[2, [3, 4, 6, 7]] = True
    one = random_equal_count_indices(masks, torch.Generator().manual_seed(3))
    again = random_equal_count_indices(masks, torch.Generator().manual_seed(3))
    assert all(torch.equal(a, b) for a, b in zip(one, again))
    assert one[0].shape == (3, 4) and one[1].shape == (3, 2)
    # Item 2 has exactly 4 visible and the batch's 2 fewest masked are kept from its 4.
    assert one[0][2].tolist() == [0, 1, 2, 5]
    with pytest.raises(ValueError, match="hides no token"):
        random_equal_count_indices(torch.zeros(2, 4, dtype=torch.bool), torch.Generator())


def test_equal_counts_refuse_an_item_without_context_or_target():
    masks = torch.zeros(2, 4, dtype=torch.bool)
    masks[0, 0] = True
    with pytest.raises(ValueError, match="hides no token"):
        equal_count_indices(masks)
    with pytest.raises(ValueError, match="the mask hides every token"):
        context_indices(torch.ones(2, 4, dtype=torch.bool))


@pytest.mark.parametrize("recipe", ["ViT_tiny_MaskFeat_PT.yaml", "ViT_tiny_MAE_PT.yaml"])
def test_tiny_recipes_train_a_step_with_multiblock_masks(recipe, caplog):
    opts = ["AUG.MASK_TYPE", "multiblock", "AUG.MASK_RATIO", "0.0", "MASK.MULTIBLOCK_SPATIAL_SCALE", "[0.15, 0.4]"]
    cfg = load_config(os.path.join(REPO, "configs", "demo", recipe), opts)
    torch.manual_seed(0)
    model = build_model(cfg)
    generator = build_mask_generator(cfg)
    masks = torch.stack([_draw(generator, seed) for seed in range(4)])  # (4, 4, 4, 4)
    clips = torch.randn(4, 3, 8, 64, 64, generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    with caplog.at_level(logging.WARNING):
        out = model(clips, masks)
    optimizer.zero_grad()
    out["loss"].backward()
    optimizer.step()
    assert torch.isfinite(out["loss"])
    assert out["pred"].shape[0] == int(masks.sum())  # the loss is on every masked token of the batch
    changed = sum(not torch.equal(a, p) for a, p in zip(before, model.parameters()))
    assert changed == len(before)
    visible = sorted(set((~masks).flatten(1).sum(1).tolist()))
    if "MAE" in recipe and len(visible) > 1:
        assert f"met clips with {visible} visible tokens in one batch" in caplog.text
