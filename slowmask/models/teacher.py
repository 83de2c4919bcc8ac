"""The frozen teacher encoder of feature distillation (MVD, UMT, MaskDistill): a trunk's
tokens after the tapped block. engine/checkpoint.py builds it from the teacher's config and
checkpoint (`build_teacher`); targets/teacher.py turns its tokens into the target.
"""

from typing import Tuple

from torch import Tensor, nn

from slowmask.geometry import Grid

from .mvit import MViTTrunk


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
