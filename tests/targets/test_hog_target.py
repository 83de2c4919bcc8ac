import pytest
import torch

from slowmask.config import get_cfg
from slowmask.targets import TARGET_REGISTRY, HOGTarget, build_target, hog


def test_rows_are_hog_of_the_token_frame_in_pyslowfast_order():
    clip = torch.randn(2, 3, 8, 32, 48, generator=torch.Generator().manual_seed(0))
    target = HOGTarget(frame_stride=2, frame_offset=1)
    out = target(clip, (4, 2, 3))
    assert out.shape == (2, 4 * 2 * 3, 3 * 9 * 2 * 2)
    assert out.shape[-1] == target.dim((2, 16, 16))
    for t in range(4):
        cells = hog(clip[:, :, 1 + 2 * t])  # (B, C, bin, 4, 6)
        for y in range(2):
            for x in range(3):
                expected = cells[:, :, :, 2 * y : 2 * y + 2, 2 * x : 2 * x + 2].reshape(2, -1)
                assert torch.equal(out[:, (t * 2 + y) * 3 + x], expected)


def test_no_parameters_no_state_no_grad():
    target = HOGTarget()
    assert list(target.parameters()) == [] and target.state_dict() == {}
    clip = torch.randn(1, 3, 2, 16, 16, requires_grad=True)
    out = target(clip, (2, 1, 1))
    assert out.dtype == torch.float32 and not out.requires_grad


def test_dim():
    assert HOGTarget().dim((2, 16, 16)) == 108
    assert HOGTarget(nbins=6, cell_size=16).dim((1, 32, 16)) == 3 * 6 * 2
    with pytest.raises(ValueError, match="prediction-token patch sides"):
        HOGTarget().dim((2, 12, 16))


def test_errors():
    target = HOGTarget(frame_stride=2, frame_offset=1)
    with pytest.raises(ValueError, match="prediction-token patch sides .* got 12 x 16"):
        target(torch.zeros(1, 3, 8, 24, 32), (4, 2, 2))
    with pytest.raises(ValueError, match="reach frame 9, but the clip has 8 frames"):
        target(torch.zeros(1, 3, 8, 16, 16), (5, 1, 1))
    with pytest.raises(ValueError, match="does not divide"):
        target(torch.zeros(1, 3, 8, 16, 16), (4, 3, 1))


def _cfg(kernel, stride, padding, center=True, pool_q=(), patch_2d=False):
    cfg = get_cfg()
    cfg.MVIT.PATCH_KERNEL, cfg.MVIT.PATCH_STRIDE, cfg.MVIT.PATCH_PADDING = kernel, stride, padding
    cfg.MVIT.PATCH_2D = patch_2d
    cfg.MVIT.POOL_Q_STRIDE = [list(row) for row in pool_q]
    cfg.MVIT.DEPTH, cfg.MASK.PRETRAIN_DEPTH = 16, [15]
    cfg.MASK.HOG_CENTER_FRAME = center
    return cfg


@pytest.mark.parametrize(
    "cfg, stride, offset",
    [
        (_cfg([3, 7, 7], [2, 4, 4], [1, 3, 3]), 2, 0),  # MViTv2: frame 2t
        (_cfg([2, 16, 16], [2, 16, 16], [0, 0, 0]), 2, 1),  # ViT: frame 2t + 1
        (_cfg([2, 16, 16], [2, 16, 16], [0, 0, 0], center=False), 2, 0),  # PySlowFast's 2t
        (_cfg([3, 7, 7], [2, 4, 4], [1, 3, 3], pool_q=[[1, 2, 2, 2]]), 4, 0),  # temporal pooling
        (_cfg([16, 16], [16, 16], [0, 0], patch_2d=True), 1, 0),  # images
    ],
)
def test_from_config_frames(cfg, stride, offset):
    target = HOGTarget.from_config(cfg)
    assert (target.frame_stride, target.frame_offset) == (stride, offset)
    assert list(range(16))[target.frames(3, 16)] == [offset, offset + stride, offset + 2 * stride]


def test_from_config_rejects_padding_beyond_centre():
    with pytest.raises(ValueError, match="MVIT.PATCH_PADDING"):
        HOGTarget.from_config(_cfg([3, 7, 7], [2, 4, 4], [2, 4, 4]))


def test_every_registered_target_smoke():
    cfg = _cfg([3, 7, 7], [2, 4, 4], [1, 3, 3])
    for name, _ in TARGET_REGISTRY:
        if name == "teacher":  # needs a teacher checkpoint; tests/engine/test_teacher.py builds one
            continue
        cfg.MASK.TARGET = name
        out = build_target(cfg)(torch.randn(2, 3, 4, 32, 32), (2, 2, 2))
        assert out.shape[:2] == (2, 8) and not out.requires_grad


def test_from_config_takes_the_cell_size_and_bins_and_sizes_the_head_by_them():
    cfg = _cfg([4, 4], [4, 4], [0, 0], patch_2d=True)
    cfg.MASK.HOG_CELL_SIZE, cfg.MASK.HOG_NBINS = 4, 6
    target = HOGTarget.from_config(cfg)
    assert (target.cell_size, target.nbins) == (4, 6)
    assert target.dim((1, 4, 4)) == 3 * 6
    clip = torch.rand(2, 3, 1, 8, 12)
    assert torch.equal(target(clip, (1, 2, 3)), HOGTarget(nbins=6, cell_size=4)(clip, (1, 2, 3)))
    assert target(clip, (1, 2, 3)).shape == (2, 6, 3 * 6)
