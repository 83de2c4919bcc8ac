"""VideoMAE V2's running-cell mask: the cell pattern of VideoMAEv2's masking_generator.py,
the same count in every cell, a pattern that turns by one unit per frame."""

import pytest
import torch

from slowmask.masking import MASK_REGISTRY, RunningCellMaskGenerator


def test_pattern_of_phase_zero_at_half():
    # queue [1, 1, 0, 0]; frame k reads it from k + 1 on, unit order row-major in the 2x2 cell.
    masks = RunningCellMaskGenerator((5, 2, 2), 0.5).phase_masks
    expected = torch.tensor([[[1, 0], [0, 1]], [[0, 0], [1, 1]], [[0, 1], [1, 0]], [[1, 1], [0, 0]], [[1, 0], [0, 1]]])
    assert torch.equal(masks[0], expected.bool())


def test_every_cell_of_every_frame_masks_the_same_count():
    for ratio, per_cell in ((0.25, 1), (0.5, 2), (0.75, 3)):
        masks = RunningCellMaskGenerator((8, 14, 14), ratio).phase_masks  # (4, 8, 14, 14)
        cells = masks.view(4, 8, 7, 2, 7, 2).sum(dim=(3, 5))
        assert (cells == per_cell).all(), ratio


def test_the_pattern_moves_one_unit_per_frame():
    masks = RunningCellMaskGenerator((8, 4, 6), 0.5).phase_masks
    # Phase p + 1 is phase p one frame later; consecutive frames differ; the period is 4 frames.
    assert torch.equal(masks[1, :-1], masks[0, 1:])
    assert torch.equal(masks[3, :-1], masks[2, 1:])
    assert (masks[:, 1:] != masks[:, :-1]).flatten(2).any(-1).all()
    assert torch.equal(masks[:, 4:], masks[:, :4])
    # Over one turn every place is masked in exactly half of the frames.
    assert (masks[:, :4].sum(dim=1) == 2).all()


def test_a_draw_is_one_of_the_phases_and_every_phase_is_drawn():
    generator = RunningCellMaskGenerator((4, 4, 4), 0.5)
    seeded = torch.Generator().manual_seed(0)
    drawn = set()
    for _ in range(40):
        mask = generator(seeded)
        matches = [p for p in range(4) if torch.equal(mask, generator.phase_masks[p])]
        assert len(matches) == 1
        drawn.add(matches[0])
    assert drawn == {0, 1, 2, 3}
    assert MASK_REGISTRY.get("running_cell") is RunningCellMaskGenerator


def test_a_grid_the_cell_does_not_tile():
    with pytest.raises(ValueError, match=r"the running cell 2x2 must tile the mask grid's \(h, w\) = \(7, 8\)"):
        RunningCellMaskGenerator((4, 7, 8), 0.5)
