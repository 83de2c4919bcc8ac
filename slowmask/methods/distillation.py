"""Distillation from a frozen teacher: MVD (Wang et al., CVPR 2023), UMT (Li et al., ICCV
2023), MaskDistill (Peng et al., 2022). The student regresses the token features of a
frozen teacher encoder instead of pixels or HOG.

- The encoder sees what the student's composition gives it: the visible tokens (MVD,
  UMT: MAE's sparse encoder, mae.py) or every token with a mask token (MaskDistill:
  MaskFeat's dense encoder, maskfeat.py).
- The decoder (MVD) or linear head (MaskDistill) predicts one teacher feature vector per
  token.
- The target: the teacher's tokens after block TEACHER.LAYER, resampled to the student's
  prediction grid and normalized (TEACHER.NORMALIZE: "layernorm" MVD, "l2" UMT). The
  teacher is built here from its own yaml (TEACHER.CFG_FILE, sized to the student's
  clips) and checkpoint (TEACHER.CHECKPOINT_FILE_PATH), frozen, in eval mode; it runs
  under the step's autocast, as costly as the student's forward.
- The loss: MODEL.LOSS_FUNC ("smooth_l1" MVD, "cosine" UMT, "mse") on MASK.LOSS_TOKENS
  (UMT aligns the "visible" ones).
- After an optimizer update: nothing (the teacher never changes).

The teacher is held outside the module tree, so it is not in the student's state dict
(checkpoints stay the student's own, and load without the teacher), not in
`parameters()` (the optimizer and DistributedDataParallel never see it), and not
switched by the student's `train()`; `.to()` / `.cuda()` / `.half()` still move it.
Importing this module (every import of slowmask.methods does) registers the "teacher"
target, so a config with MASK.TARGET "teacher" builds under any method.
"""

import logging
from typing import Callable, Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from fvcore.common.config import CfgNode
from torch import Tensor, nn

from slowmask import targets
from slowmask.config import load_config
from slowmask.geometry import Grid
from slowmask.models import MViTTrunk, build_loss, trunk_args
from slowmask.checkpoint import load_pretrained
from slowmask.targets import TARGET_REGISTRY

from .build import METHOD_REGISTRY
from .mae import MAE, sparse_parts
from .maskfeat import MaskFeat, dense_parts

logger = logging.getLogger(__name__)

# The target name of distillation (MASK.TARGET).
TEACHER_TARGET = "teacher"


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


# MVD's parameter-free LayerNorm of the teacher tokens uses eps 1e-6.
LAYER_NORM_EPS = 1e-6


def _layer_norm(features: Tensor) -> Tensor:
    """(..., D) -> each token minus its mean over D, over its (biased) std: MVD's
    `--norm_feature`, a LayerNorm without affine parameters."""
    return F.layer_norm(features, features.shape[-1:], eps=LAYER_NORM_EPS)


def _l2(features: Tensor) -> Tensor:
    """(..., D) -> each token scaled to unit length (UMT's normalization of CLIP features)."""
    return F.normalize(features, dim=-1)


FEATURE_NORMS: Dict[str, Callable[[Tensor], Tensor]] = {
    "layernorm": _layer_norm,
    "l2": _l2,
    "none": lambda features: features,
}


def resample_tokens(tokens: Tensor, grid_in: Sequence[int], grid_out: Sequence[int]) -> Tensor:
    """(B, t*h*w, D) tokens of `grid_in` (t, h, w) -> (B, t'*h'*w', D) on `grid_out`.

    An axis that shrinks is averaged over the tokens each output covers (adaptive
    average pooling: an image teacher's two frames of a 2-frame tube become their mean);
    an axis that grows is interpolated linearly (align_corners=False), so a teacher with
    coarser patches gives every student token the teacher value at its centre.
    """
    batch, count, dim = tokens.shape
    grid_in, grid_out = tuple(int(g) for g in grid_in), tuple(int(g) for g in grid_out)
    if count != grid_in[0] * grid_in[1] * grid_in[2]:
        raise ValueError(f"{count} teacher tokens do not fill the grid {grid_in}")
    if grid_in == grid_out:
        return tokens
    volume = tokens.transpose(1, 2).reshape(batch, dim, *grid_in)  # (B, D, t, h, w)
    pooled = tuple(min(a, b) for a, b in zip(grid_in, grid_out))
    if pooled != grid_in:
        volume = F.adaptive_avg_pool3d(volume, pooled)
    if pooled != grid_out:
        volume = F.interpolate(volume, size=grid_out, mode="trilinear", align_corners=False)
    return volume.flatten(2).transpose(1, 2)


class TeacherFeatureTarget(nn.Module):
    """Token features of a frozen teacher on the student's prediction grid.

    Args:
        teacher: `teacher(clip (B, 3, T, H, W))` -> ((B, t'*h'*w', D) tokens in
            (t, h, w) order without class token, grid (t', h', w')). It is frozen
            (requires_grad False) and put in eval mode here, and stays so.
        dim: D, the teacher's feature width (the width of every target vector).
        normalize: a FEATURE_NORMS name applied to each target token after resampling
            to the prediction grid ("layernorm": MVD; "l2": UMT; "none").
    """

    # The pretrainer runs this target under the training step's autocast: the teacher is a
    # full encoder, and its forward is as costly as the student's.
    runs_under_autocast = True

    def __init__(self, teacher: nn.Module, dim: int, normalize: str = "layernorm") -> None:
        super().__init__()
        if normalize not in FEATURE_NORMS:
            raise ValueError(f"teacher feature normalization {normalize!r} is unknown; use one of {sorted(FEATURE_NORMS)}")
        teacher.requires_grad_(False)
        teacher.eval()
        # A tuple is a plain attribute for nn.Module: the teacher stays out of the module
        # tree (state_dict, parameters, train()).
        self._held = (teacher,)
        self.feature_dim = int(dim)
        self.normalize = normalize

    @property
    def teacher(self) -> nn.Module:
        return self._held[0]

    def _apply(self, fn, recurse: bool = True):  # noqa: ANN001 - nn.Module's signature
        """Device and dtype moves (`.to`, `.cuda`, `.half`) reach the held teacher too."""
        self.teacher._apply(fn)
        return super()._apply(fn, recurse)

    def dim(self, patch: Tuple[int, int, int]) -> int:
        """The teacher's width, whatever pixels a prediction token covers."""
        return self.feature_dim

    @torch.no_grad()
    def forward(self, clip: Tensor, grid: Sequence[int]) -> Tensor:
        """Targets (B, t*h*w, D) float32 of `clip` (B, 3, T, H, W) on the prediction grid
        (t, h, w), rows in (t, h, w) order."""
        if self.teacher.training:
            raise RuntimeError("the teacher was switched to train mode; it must stay in eval mode")
        tokens, teacher_grid = self.teacher(clip)
        if tokens.shape[-1] != self.feature_dim:
            raise ValueError(f"the teacher gave {tokens.shape[-1]}-wide features; the target was built for {self.feature_dim}")
        tokens = resample_tokens(tokens.float(), teacher_grid, grid)
        # Normalized after resampling, so each target token the loss sees is normalized.
        return FEATURE_NORMS[self.normalize](tokens)


@TARGET_REGISTRY.register(name=TEACHER_TARGET)
class FrozenTeacherTarget(TeacherFeatureTarget):
    """The "teacher" target: TeacherFeatureTarget around the teacher TEACHER.* names,
    normalized by TEACHER.NORMALIZE."""

    @classmethod
    def from_config(cls, cfg: CfgNode) -> "FrozenTeacherTarget":
        teacher = build_teacher(cfg)
        return cls(teacher, dim=teacher.dim, normalize=cfg.TEACHER.NORMALIZE)


def _student_of_teacher(cls: type, cfg: CfgNode, parts: Callable) -> nn.Module:
    """`cls`, a student composition, from `parts(cfg, build_target)` (dense_parts or
    sparse_parts) with the frozen teacher TEACHER.* names as its target, MODEL.LOSS_FUNC
    on MASK.LOSS_TOKENS."""
    name = targets.target_name(cfg)
    if name != TEACHER_TARGET:
        raise ValueError(f'{cls.__name__} distils a teacher, but MASK.TARGET is {name!r}: set MASK.TARGET "teacher"')
    encoder, head, target = parts(cfg, FrozenTeacherTarget.from_config)
    return cls(encoder, head, target, build_loss(cfg.MODEL.LOSS_FUNC), cfg.MASK.LOSS_TOKENS)


@METHOD_REGISTRY.register(name="MVD")
class MVD(MAE):
    """MAE's sparse student (mae.py) regressing the frozen teacher's features (MVD, UMT)."""

    @classmethod
    def from_config(cls, cfg: CfgNode) -> "MVD":
        return _student_of_teacher(cls, cfg, sparse_parts)


@METHOD_REGISTRY.register(name="MaskDistill")
class MaskDistill(MaskFeat):
    """MaskFeat's dense student (maskfeat.py) regressing the frozen teacher's features."""

    @classmethod
    def from_config(cls, cfg: CfgNode) -> "MaskDistill":
        return _student_of_teacher(cls, cfg, dense_parts)
