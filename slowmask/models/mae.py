"""MAE's sparse encoder (He et al., 2022, Sec. 3; Feichtenhofer et al., 2022 for video):
the encoder sees the visible tokens only, gathered out of the sequence, so at 90 %
masking it runs on a tenth of the tokens. Its output is carried to the decoder's width,
mask tokens are put back at the masked positions (in (t, h, w) order) and the decoder's
own positions are added.

The module owns what PySlowFast's MAE keeps at the top level of its state dict (the
trunk, `norm`, `decoder_embed`, `mask_token`, `decoder_pos_embed` or
`dec_pos_embed_spatial/temporal/class`); the decoder blocks are the prediction head
(`pred_head.transforms.0.*`, see decoder_head.py), so checkpoints keep PySlowFast's names.
"""

import logging
from typing import Any, List, Sequence, Tuple

import torch
from torch import Tensor, nn

from slowmask.geometry import Grid
from slowmask.masking.grids import upsample_mask
from slowmask.masking.multiblock import context_indices

from .layers.attention import LayerNorm6
from .layers.block import INIT_STD, init_weights
from .layers.layout import NO_POOL, BlockLayout
from .mvit import MViTTrunk
from .layers.position import learned_tables, positions_on_grid

logger = logging.getLogger(__name__)

# PySlowFast's names of the decoder's position tables, by role (models/layers/position.py).
DECODER_POS_EMBED_NAMES = {
    "joint": "decoder_pos_embed",
    "spatial": "dec_pos_embed_spatial",
    "temporal": "dec_pos_embed_temporal",
    "class": "dec_pos_embed_class",
}


def visible_indices(mask: Tensor) -> Tensor:
    """(B, N) bool, True = masked -> (B, K) int64 positions of the visible tokens in
    increasing order, K the batch's smallest visible count: an item with more visible
    tokens (a multi-block mask) keeps its first K (`masking.context_indices`); its others
    are neither encoded nor in the loss."""
    return context_indices(mask)


def gather_tokens(tokens: Tensor, index: Tensor) -> Tensor:
    """(B, N, D) tokens, (B, K) positions -> (B, K, D)."""
    return torch.gather(tokens, 1, index.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))


def check_sparse_layout(layout: Sequence[BlockLayout], rel_pos: bool) -> None:
    """ValueError unless the blocks neither pool nor use relative positions: both need
    the full token grid, which a sparse encoder does not have."""
    pooled = [i for i, spec in enumerate(layout) if spec.kernel_q != NO_POOL or spec.kernel_kv != NO_POOL]
    if pooled or rel_pos:
        raise ValueError(
            "MAE's sparse encoder needs a ViT: no attention pooling (blocks "
            f"{pooled} pool; set MVIT.POOL_Q_STRIDE, POOL_KV_STRIDE [] and POOL_KV_STRIDE_ADAPTIVE None) "
            "and no relative positions (MVIT.REL_POS_SPATIAL / REL_POS_TEMPORAL False)"
        )


class MAEEncoder(MViTTrunk):
    """Sparse ViT encoder + the decoder's input: model part of MAE / VideoMAE.

    Args:
        layout: the encoder's blocks (no pooling).
        decoder_dim: decoder width (MASK.DECODER_EMBED_DIM).
        decoder_sep_pos_embed: separate spatial / temporal decoder positions
            (MASK.DECODER_SEP_POS_EMBED) instead of one table.
        trunk_args: MViTTrunk's arguments; options.rel_pos_* must be off.
    """

    def __init__(
        self,
        layout: Sequence[BlockLayout],
        *,
        decoder_dim: int,
        decoder_sep_pos_embed: bool = False,
        **trunk_args: Any,
    ) -> None:
        options = trunk_args.get("options")
        check_sparse_layout(layout, options is not None and (options.rel_pos_spatial or options.rel_pos_temporal))
        super().__init__(layout, **trunk_args)
        dim = layout[-1].dim_out
        self.norm = LayerNorm6(dim)
        self.decoder_embed = nn.Linear(dim, decoder_dim, bias=True)
        self._warned_uneven_counts = False
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        nn.init.trunc_normal_(self.mask_token, std=INIT_STD)
        self._init_decoder_pos_embed(decoder_dim, decoder_sep_pos_embed)
        self.decoder_embed.apply(init_weights)

    def _init_decoder_pos_embed(self, dim: int, separate: bool) -> None:
        """Learned decoder positions for the token grid (always on: they tell the decoder
        where each mask token sits), one table or spatial + temporal + class."""
        self.decoder_sep_pos_embed = separate
        tables = learned_tables(self.patch_grid, dim, self.num_prefix, separate, INIT_STD)
        for role, table in tables.items():
            setattr(self, DECODER_POS_EMBED_NAMES[role], table)

    def _visible_with_cls_and_pos(self, tokens: Tensor, grid: Grid, keep: Tensor) -> Tensor:
        """(B, N, D) patch tokens -> (B, [1+]K, D): the K kept ones with class token and
        positions, as `add_cls_and_pos` would give them in the full sequence."""
        x = gather_tokens(tokens, keep)
        pos = self._abs_pos_embed(grid) if self.use_abs_pos else None
        if pos is not None:
            p = self.num_prefix
            x = x + gather_tokens(pos[:, p:].expand(x.shape[0], -1, -1), keep)
        if self.cls_token is not None:
            cls = self.cls_token if pos is None else self.cls_token + pos[:, :1]
            x = torch.cat((cls.expand(x.shape[0], -1, -1), x), dim=1)
        x = self.pos_drop(x)
        return x if self.norm_stem is None else self.norm_stem(x)

    def _warn_uneven_counts(self, token_mask: Tensor, kept: int) -> None:
        """A WARNING, once per encoder, the first time a batch's clips have different
        visible counts and some visible tokens are left out."""
        visible = (~token_mask).sum(dim=1)  # (B,)
        if self._warned_uneven_counts or bool((visible == kept).all()):
            return
        self._warned_uneven_counts = True
        logger.warning(
            "the sparse encoder met clips with %s visible tokens in one batch: each encodes the batch's smallest "
            "count, %d, its first in (t, h, w) order; its other visible tokens are neither encoded nor in the loss "
            "(said once; exact-count masks such as random or tube avoid it)",
            sorted(set(visible.tolist())),
            kept,
        )

    def encode_visible(self, tokens: Tensor, grid: Grid, token_mask: Tensor) -> Tuple[Tensor, Tensor]:
        """Encode the visible tokens only.

        Args:
            tokens: (B, N, D) patch embeddings on `grid` (t, h, w), N = t*h*w.
            token_mask: (B, N) bool, True = masked.
        Returns:
            latent (B, [1+]K, D) after the blocks and `norm`, and the K kept positions
            (B, K) in increasing order.
        """
        keep = visible_indices(token_mask)
        self._warn_uneven_counts(token_mask, keep.shape[1])
        visible = self._visible_with_cls_and_pos(tokens, grid, keep)
        # No pooling and no relative positions: the grid only places the kept tokens for
        # rotary positions (MVIT.USE_ROPE).
        latent, _, _ = self.forward_blocks(visible, grid, positions=keep)
        return self.norm(latent), keep

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, 3, T, H, W) clip -> (B, N, D) latents of all N = t*h*w tokens (nothing
        masked, no class token), after `norm`: what a probe or a classifier reads. The
        whole sequence as `encode_visible` lays out its kept tokens, without their gather
        (whose shape depends on the mask's values), so that torch.export can trace it."""
        tokens, grid = self.patch_embed(x)
        latent, _, _ = self.forward_blocks(self.add_cls_and_pos(tokens, grid), (1, 1, tokens.shape[1]))
        return self.norm(latent)[:, self.num_prefix :]

    def _decoder_pos_embed(self, grid: Grid) -> Tensor:
        """(1, [1+]N, decoder_dim) decoder positions for the token grid."""
        tables = self.position_tables(DECODER_POS_EMBED_NAMES)
        return positions_on_grid(tables, self.patch_grid, grid, self.num_prefix)

    def forward(self, x: Tensor, mask: Tensor) -> Tuple[List[Tensor], List[Grid]]:
        """Encode the visible tokens, then lay out the decoder's input.

        Args:
            x: (B, 3, T, H, W) clip.
            mask: (B, t, h, w) bool on the mask grid (dividing the token grid), True = masked.
        Returns:
            [(B, [1+]N, decoder_dim)]: visible latents at their positions, `mask_token`
            elsewhere, plus decoder positions, N = t*h*w tokens in (t, h, w) order; and
            [token grid].
        """
        tokens, grid = self.patch_embed(x)
        token_mask = upsample_mask(mask, grid).flatten(1)
        latent, keep = self.encode_visible(tokens, grid, token_mask)
        latent = self.decoder_embed(latent)
        p = self.num_prefix
        full = self.mask_token.to(latent.dtype).expand(latent.shape[0], token_mask.shape[1], -1)
        full = full.scatter(1, keep.unsqueeze(-1).expand(-1, -1, latent.shape[-1]), latent[:, p:])
        decoder_input = torch.cat((latent[:, :p], full), dim=1) + self._decoder_pos_embed(grid)
        return [decoder_input], [grid]
