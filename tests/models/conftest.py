"""Fixtures of the model tests: tiny configurations and a stand-in pretraining target."""

from typing import Callable, List, Sequence, Tuple

import pytest
import torch
from fvcore.common.config import CfgNode
from torch import Tensor, nn

import slowmask.targets
from slowmask.config import get_cfg

# A tiny MViTv2 with rel pos and one query-pooling stage: 8x32x32 clips, 3x7x7 patches
# with stride 2x4x4 -> 4x8x8 tokens; block 1 pools to 4x4x4 (8x8 pixels per token).
TINY_MVIT = [
    "DATA.NUM_FRAMES", "8",
    "DATA.TRAIN_CROP_SIZE", "32",
    "DATA.TEST_CROP_SIZE", "32",
    "MVIT.EMBED_DIM", "16",
    "MVIT.NUM_HEADS", "1",
    "MVIT.DEPTH", "3",
    "MVIT.PATCH_KERNEL", "[3, 7, 7]",
    "MVIT.PATCH_STRIDE", "[2, 4, 4]",
    "MVIT.PATCH_PADDING", "[1, 3, 3]",
    "MVIT.DIM_MUL", "[[1, 2.0]]",
    "MVIT.HEAD_MUL", "[[1, 2.0]]",
    "MVIT.POOL_Q_STRIDE", "[[0, 1, 1, 1], [1, 1, 2, 2], [2, 1, 1, 1]]",
    "MVIT.POOL_KVQ_KERNEL", "[3, 3, 3]",
    "MVIT.POOL_KV_STRIDE_ADAPTIVE", "[1, 2, 2]",
    "MVIT.USE_ABS_POS", "False",
    "MVIT.REL_POS_SPATIAL", "True",
    "MVIT.REL_POS_TEMPORAL", "True",
    "MVIT.RESIDUAL_POOLING", "True",
    "MVIT.DROPPATH_RATE", "0.0",
    "MODEL.DROPOUT_RATE", "0.0",
]
TINY_MASKFEAT = TINY_MVIT + [
    "MODEL.MODEL_NAME", "MaskMViT",
    "MODEL.LOSS_FUNC", "multi_mse",
    "MASK.ENABLE", "True",
    "MASK.PRETRAIN_DEPTH", "[2]",
    "MASK.PRED_HOG", "True",
    "AUG.MASK_WINDOW_SIZE", "[2, 2, 2]",
]
# A tiny ViT: 2x16x16 patches of 4x32x32 clips -> 2x2x2 tokens, no pooling.
TINY_VIT = [
    "DATA.NUM_FRAMES", "4",
    "DATA.TRAIN_CROP_SIZE", "32",
    "MVIT.EMBED_DIM", "16",
    "MVIT.NUM_HEADS", "2",
    "MVIT.DEPTH", "2",
    "MVIT.PATCH_KERNEL", "[2, 16, 16]",
    "MVIT.PATCH_STRIDE", "[2, 16, 16]",
    "MVIT.PATCH_PADDING", "[0, 0, 0]",
    "MVIT.SEP_POS_EMBED", "True",
    "MVIT.DROPPATH_RATE", "0.0",
    "MODEL.DROPOUT_RATE", "0.0",
    "MODEL.NUM_CLASSES", "5",
]


class StandInTarget(nn.Module):
    """Target for model tests: a fixed random projection of each prediction token's
    pixels on its first frame, (B, 3, T, H, W) -> (B, t*h*w, out_dim); no state dict."""

    def __init__(self, out_dim: int = 27) -> None:
        super().__init__()
        self.out_dim = out_dim

    def dim(self, patch: Tuple[int, int, int]) -> int:
        return self.out_dim

    def forward(self, clip: Tensor, grid: Sequence[int]) -> Tensor:
        batch, channels, frames, height, width = clip.shape
        t, h, w = grid
        ph, pw = height // h, width // w
        patches = clip[:, :, :: frames // t].reshape(batch, channels, t, h, ph, w, pw)
        patches = patches.permute(0, 2, 3, 5, 1, 4, 6).reshape(batch, t * h * w, channels * ph * pw)
        generator = torch.Generator().manual_seed(patches.shape[-1])
        weight = torch.randn(patches.shape[-1], self.out_dim, generator=generator)
        return patches.float() @ weight


@pytest.fixture
def stand_in_target(monkeypatch) -> StandInTarget:
    """Make `build_target` return a StandInTarget (the model builder's only use of targets)."""
    target = StandInTarget()
    monkeypatch.setattr(slowmask.targets, "build_target", lambda cfg: target)
    return target


@pytest.fixture
def tiny_mvit() -> List[str]:
    return list(TINY_MVIT)


@pytest.fixture
def tiny_maskfeat() -> List[str]:
    return list(TINY_MASKFEAT)


@pytest.fixture
def tiny_vit() -> List[str]:
    return list(TINY_VIT)


@pytest.fixture
def make_cfg() -> Callable[..., CfgNode]:
    """make_cfg(base_opts, *more_opts) -> defaults merged with KEY VALUE lists."""

    def make(*opts: Sequence[str]) -> CfgNode:
        cfg = get_cfg()
        for opt in opts:
            cfg.merge_from_list(list(opt))
        return cfg

    return make

