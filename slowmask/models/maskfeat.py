"""MaskFeat's dense encoder (Wei et al. 2022, sec. 3): every token goes through the
network; masked patch tokens are replaced by a learned `mask_token` before the class
token and the positions are added, so the model knows where, but not what."""

from typing import Any, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from slowmask.geometry import Grid
from slowmask.masking.grids import upsample_mask
from .block import INIT_STD
from .layout import BlockLayout
from .mvit import MViTTrunk


class MaskFeatEncoder(MViTTrunk):
    """MViT trunk up to block max(pretrain_depth) (no final norm, no head) + `mask_token`.

    Args:
        layout: the layout of the whole network; blocks after the deepest pretraining
            depth are not built.
        pretrain_depth: block indices whose outputs are predicted from (MASK.PRETRAIN_DEPTH).
        trunk_args: MViTTrunk's arguments.
    """

    def __init__(self, layout: Sequence[BlockLayout], *, pretrain_depth: Sequence[int], **trunk_args: Any) -> None:
        depths = sorted(int(d) for d in pretrain_depth)
        if not depths or depths[0] < 0 or depths[-1] >= len(layout):
            raise ValueError(
                f"pretrain depths {list(pretrain_depth)} must be block indices in [0, {len(layout) - 1}]"
            )
        super().__init__(layout[: depths[-1] + 1], **trunk_args)
        self.pretrain_depth = tuple(depths)
        self.out_dims = [layout[d].dim_out for d in depths]
        self.mask_token = nn.Parameter(torch.zeros(1, 1, self.embed_dim))
        nn.init.trunc_normal_(self.mask_token, std=INIT_STD)

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tuple[List[Tensor], List[Grid]]:
        """Encode a clip with its masked patches hidden.

        Args:
            x: (B, 3, T, H, W) clip.
            mask: (B, t, h, w) bool on the mask grid, True = masked; None masks nothing.
        Returns:
            features: per pretraining depth, (B, N_i, D_i) grid tokens (no class token),
                N_i = t_i*h_i*w_i in (t, h, w) order.
            grids: per pretraining depth, its prediction grid (t_i, h_i, w_i).
        """
        tokens, grid = self.patch_embed(x)
        if mask is not None:
            masked = upsample_mask(mask, grid).flatten(1).unsqueeze(-1)
            tokens = torch.where(masked, self.mask_token.to(tokens.dtype), tokens)
        _, _, tapped = self.forward_blocks(self.add_cls_and_pos(tokens, grid), grid, self.pretrain_depth)
        features = [out[:, self.num_prefix :] for out, _ in tapped]
        return features, [out_grid for _, out_grid in tapped]
