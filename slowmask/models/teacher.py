"""The frozen teacher of feature distillation (MVD, UMT, MaskDistill): a trunk's tokens
after the tapped block (`TeacherEncoder`), built from the teacher's config and checkpoint
(`build_teacher`), and the "teacher" target around it (targets/teacher.py turns its tokens
into the target).

The target is registered here, where both the model builder and checkpoint reading are
below: targets/ cannot import the models and checkpoints a teacher is made of, and
importing slowmask.models (which every pretraining model's builder does) registers it.
"""

import logging
from typing import List, Tuple

from fvcore.common.config import CfgNode
from torch import Tensor, nn

from slowmask.config import load_config
from slowmask.geometry import Grid
from slowmask.targets import TARGET_REGISTRY
from slowmask.targets.teacher import TeacherFeatureTarget

from .build import trunk_args
from .mvit import MViTTrunk
from slowmask.checkpoint import load_pretrained

logger = logging.getLogger(__name__)


class TeacherEncoder(nn.Module):
    """A trunk's tokens after its last block: clip (B, 3, T, H, W) -> ((B, t*h*w, D)
    tokens without the class token, grid (t, h, w)).

    Args:
        trunk: the teacher's patch embedding, positions and blocks (up to the tapped one).
        per_frame: the trunk is an image encoder (2-D patches): each frame is encoded on
            its own, as MVD's image teacher sees a video, and the frames' tokens stacked
            along t.
    """

    def __init__(self, trunk: MViTTrunk, per_frame: bool) -> None:
        super().__init__()
        self.trunk = trunk
        self.per_frame = per_frame

    @property
    def dim(self) -> int:
        return self.trunk.blocks[-1].dim_out

    def _encode(self, x: Tensor) -> Tuple[Tensor, Grid]:
        tokens, grid = self.trunk.patch_embed(x)
        out, grid, _ = self.trunk.forward_blocks(self.trunk.add_cls_and_pos(tokens, grid), grid)
        return out[:, self.trunk.num_prefix :], grid

    def forward(self, x: Tensor) -> Tuple[Tensor, Grid]:
        batch, channels, frames, height, width = x.shape
        if not self.per_frame:
            return self._encode(x)
        images = x.transpose(1, 2).reshape(batch * frames, channels, 1, height, width)
        tokens, (_, h, w) = self._encode(images)  # (B*T, h*w, D)
        return tokens.reshape(batch, frames * h * w, -1), (frames, h, w)


def teacher_config(cfg: CfgNode) -> CfgNode:
    """The teacher's config: TEACHER.CFG_FILE with TEACHER.OPTS, its input set to the
    student's crop (and, for a video teacher, the student's frames)."""
    if not cfg.TEACHER.CFG_FILE:
        raise ValueError("MASK.TARGET 'teacher' needs TEACHER.CFG_FILE: set it to the yaml of the teacher's architecture")
    if cfg.TEACHER.LOAD_WEIGHTS and not cfg.TEACHER.CHECKPOINT_FILE_PATH:
        raise ValueError(
            "MASK.TARGET 'teacher' needs TEACHER.CHECKPOINT_FILE_PATH: set it to the teacher's local "
            "checkpoint (a MaskFeat or MAE pretraining run's checkpoint_epoch_*.pyth)"
        )
    image_teacher = load_config(cfg.TEACHER.CFG_FILE, list(cfg.TEACHER.OPTS)).MVIT.PATCH_2D
    geometry: List[str] = ["DATA.TRAIN_CROP_SIZE", str(cfg.DATA.TRAIN_CROP_SIZE)]
    if not image_teacher:
        geometry += ["DATA.NUM_FRAMES", str(cfg.DATA.NUM_FRAMES)]
    return load_config(cfg.TEACHER.CFG_FILE, geometry + list(cfg.TEACHER.OPTS))


def build_teacher(cfg: CfgNode) -> TeacherEncoder:
    """The frozen teacher encoder (eval mode, no gradient) of TEACHER.*, with its
    checkpoint's weights (unless TEACHER.LOAD_WEIGHTS is False), cut after block TEACHER.LAYER."""
    tcfg = teacher_config(cfg)
    args = trunk_args(tcfg)
    depth = len(args["layout"])
    layer = cfg.TEACHER.LAYER if cfg.TEACHER.LAYER >= 0 else depth + cfg.TEACHER.LAYER
    if not 0 <= layer < depth:
        raise ValueError(f"TEACHER.LAYER {cfg.TEACHER.LAYER} is outside the teacher's {depth} blocks; use 0..{depth - 1} or -1")
    args["layout"] = args["layout"][: layer + 1]
    trunk = MViTTrunk(**args)
    if cfg.TEACHER.LOAD_WEIGHTS:
        load_pretrained(cfg.TEACHER.CHECKPOINT_FILE_PATH, trunk)
    else:
        logger.warning("teacher: TEACHER.LOAD_WEIGHTS is False: its weights are random, its targets meaningless")
    teacher = TeacherEncoder(trunk, per_frame=tcfg.MVIT.PATCH_2D)
    teacher.requires_grad_(False)
    logger.info(
        "teacher: %s, blocks 0..%d of %d, %d-wide features, from %s",
        cfg.TEACHER.CFG_FILE, layer, depth, teacher.dim,
        cfg.TEACHER.CHECKPOINT_FILE_PATH if cfg.TEACHER.LOAD_WEIGHTS else "random weights",
    )
    return teacher.eval()


@TARGET_REGISTRY.register(name="teacher")
class FrozenTeacherTarget(TeacherFeatureTarget):
    """The "teacher" target: TeacherFeatureTarget around the teacher TEACHER.* names,
    normalized by TEACHER.NORMALIZE."""

    @classmethod
    def from_config(cls, cfg: CfgNode) -> "FrozenTeacherTarget":
        teacher = build_teacher(cfg)
        return cls(teacher, dim=teacher.dim, normalize=cfg.TEACHER.NORMALIZE)
