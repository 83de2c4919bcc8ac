"""Teacher-feature targets: the student regresses the token features of a frozen
teacher encoder (MaskDistill, Peng et al., 2022; MVD, Wang et al., CVPR 2023, Sec. 3.2;
UMT, Li et al., ICCV 2023, Sec. 3.1).

`TeacherFeatureTarget` takes a ready teacher module (dependency injection): this layer
knows nothing of how the teacher's model or checkpoint is built
(`slowmask.models.teacher` builds it and registers the "teacher" target).

The teacher is held outside the module tree, so it is not in the student's state dict
(checkpoints stay the student's own, and load without the teacher), not in
`parameters()` (the optimizer and DistributedDataParallel never see it), and not
switched by the student's `train()`; `.to()` / `.cuda()` / `.half()` still move it.
"""

from typing import Callable, Dict, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

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
