import pytest

import slowmask.methods  # noqa: F401  (registers the "teacher" target)
from slowmask.config import get_cfg
from slowmask.targets import TARGET_REGISTRY, HOGTarget, PixelTarget, build_target, target_dim


def _pretrain_cfg():
    cfg = get_cfg()
    cfg.MVIT.PATCH_KERNEL, cfg.MVIT.PATCH_STRIDE, cfg.MVIT.PATCH_PADDING = [3, 7, 7], [2, 4, 4], [1, 3, 3]
    cfg.MVIT.DEPTH, cfg.MASK.PRETRAIN_DEPTH = 16, [15]
    return cfg


def test_pred_hog_builds_hog():
    cfg = _pretrain_cfg()
    cfg.MASK.PRED_HOG = True
    assert isinstance(build_target(cfg), HOGTarget)
    cfg.MASK.PRED_HOG, cfg.MASK.TARGET = False, "hog"
    assert isinstance(build_target(cfg), HOGTarget)


def test_pred_hog_false_builds_pixels():
    cfg = _pretrain_cfg()
    cfg.MASK.NORM_PRED_PIXEL, cfg.MASK.TIME_STRIDE_LOSS = False, False
    target = build_target(cfg)
    assert isinstance(target, PixelTarget) and not target.normalize and not target.time_stride
    assert target_dim(cfg) == 2 * 4 * 4 * 3  # a 2x4x4 token of the unpooled grid


def test_unknown_target_lists_registered():
    cfg = _pretrain_cfg()
    cfg.MASK.TARGET = "sift"
    with pytest.raises(ValueError) as raised:
        build_target(cfg)
    # The message lists every registered target, no more: slowmask's own (importing
    # slowmask.methods registers the teacher) and any a user's module registered earlier
    # in this process.
    registered = ", ".join(repr(name) for name in TARGET_REGISTRY.names())
    assert str(raised.value) == f"MASK.TARGET 'sift' is not a registered target; registered: {registered}"
    assert {"hog", "pixel", "teacher"} <= set(TARGET_REGISTRY.names())


def test_target_dim_mvitv2_s():
    cfg = _pretrain_cfg()
    cfg.MASK.PRED_HOG = True
    cfg.MVIT.POOL_Q_STRIDE = [[1, 1, 2, 2], [3, 1, 2, 2]]  # 56 x 56 tokens -> 14 x 14 predictions
    assert target_dim(cfg) == 108
    cfg.MASK.PRETRAIN_DEPTH = [2]  # before the second pooling: 8 x 8 pixels per prediction
    assert target_dim(cfg) == 27


def test_target_dim_vit():
    cfg = _pretrain_cfg()
    cfg.MASK.PRED_HOG = True
    cfg.MVIT.PATCH_KERNEL, cfg.MVIT.PATCH_STRIDE, cfg.MVIT.PATCH_PADDING = [2, 16, 16], [2, 16, 16], [0, 0, 0]
    assert target_dim(cfg) == 108
    cfg.MVIT.PATCH_2D = True
    cfg.MVIT.PATCH_KERNEL, cfg.MVIT.PATCH_STRIDE, cfg.MVIT.PATCH_PADDING = [16, 16], [16, 16], [0, 0]
    assert target_dim(cfg) == 108
