"""The two networks of a joint-embedding predictive architecture on video (V-JEPA: Bardes
et al., 2024; V-JEPA 2: Assran et al., 2025; I-JEPA on images: Assran et al., 2023):

- `JEPAEncoder`: a ViT (no pooling, no class token) that encodes only the tokens it is
  given (the context of a mask set, or every token for the target and for probes),
  ending in a LayerNorm (`norm`). Positions: 3-D rotary ones in the attention
  (MVIT.USE_ROPE, V-JEPA 2), or a fixed sine-cosine table gathered at the kept tokens
  (V-JEPA).
- `JEPAPredictor`: a narrow ViT on the context tokens carried to its width
  (`predictor_embed`) plus one learned mask token (`mask_tokens.i`, zero-initialized) at
  each position to predict, with its own positions (rotary, or a sine-cosine table of its
  width, `predictor_pos_embed`); `predictor_blocks`, `predictor_norm`, and
  `predictor_proj` back to the encoder's width, read at the predicted positions.

Parameter names are those of facebookresearch/vjepa2's `VisionTransformer` and
`VisionTransformerPredictor`, so its checkpoints load after their `module.backbone.`
prefix is dropped (checkpoint/convert/vjepa.py).
"""

from typing import Any, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from slowmask.geometry import Grid

from .layers.attention import LayerNorm6
from .layers.block import BlockOptions, MultiScaleBlock, init_weights
from .layers.layout import BlockLayout
from .layers.position import positions_on_grid, sincos_table
from .layers.rope import token_coordinates
from .mae import check_sparse_layout, gather_tokens
from .mvit import MViTTrunk


class JEPAEncoder(MViTTrunk):
    """ViT encoder of the kept tokens: (B, 3, T, H, W), (B, K) positions -> (B, K, D).

    Args:
        layout: the blocks (no pooling).
        trunk_args: MViTTrunk's arguments; no class token, no relative positions.
    """

    def __init__(self, layout: Sequence[BlockLayout], **trunk_args: Any) -> None:
        options = trunk_args.get("options", BlockOptions())
        check_sparse_layout(layout, options.rel_pos_spatial or options.rel_pos_temporal)
        if trunk_args.get("cls_embed_on", True):
            raise ValueError("V-JEPA's encoder has no class token: set MVIT.CLS_EMBED_ON False")
        super().__init__(layout, **trunk_args)
        self.norm = LayerNorm6(layout[-1].dim_out)

    def encode(self, x: Tensor, keep: Optional[Tensor] = None) -> Tuple[Tensor, Grid]:
        """Encode the tokens at `keep`.

        Args:
            x: (B, 3, T, H, W) clip.
            keep: (B, K) int64 indices into the flattened token grid; None keeps every token.
        Returns:
            (B, K, D) tokens after the blocks and `norm`, in `keep`'s order, and the token grid.
        """
        tokens, grid = self.patch_embed(x)  # (B, N, D)
        if self.use_abs_pos:
            tokens = tokens + self._abs_pos_embed(grid)
        if keep is not None:
            tokens = gather_tokens(tokens, keep)
        tokens = self.pos_drop(tokens)
        tokens = tokens if self.norm_stem is None else self.norm_stem(tokens)
        out, _, _ = self.forward_blocks(tokens, grid, positions=keep)
        return self.norm(out), grid

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, 3, T, H, W) -> (B, N, D) every token, after `norm`: what probes read."""
        return self.encode(x)[0]

    def forward(self, x: Tensor, keep: Optional[Tensor] = None) -> Tuple[Tensor, Grid]:
        return self.encode(x, keep)


class JEPAPredictor(nn.Module):
    """Predicts the encoder's tokens at target positions from the context tokens.

    Args:
        encoder_dim: width of the encoder's tokens (in and out).
        layout: the predictor's blocks (width, heads, drop path), no pooling.
        grid: the token grid its sine-cosine table is laid out for (without rotary positions).
        num_mask_tokens: learned mask tokens; mask set i uses token i mod num_mask_tokens.
        options: the blocks' options (`use_rope` for rotary positions).
        sincos_layout: the table's layout without rotary positions (position.SINCOS_LAYOUTS).
        act_checkpoint: recompute each block in the backward pass.
    """

    def __init__(
        self,
        encoder_dim: int,
        layout: Sequence[BlockLayout],
        *,
        grid: Grid,
        num_mask_tokens: int,
        options: BlockOptions = BlockOptions(),
        sincos_layout: str = "vjepa",
        act_checkpoint: bool = False,
    ) -> None:
        super().__init__()
        check_sparse_layout(layout, options.rel_pos_spatial or options.rel_pos_temporal)
        if num_mask_tokens < 1:
            raise ValueError(f"the predictor needs at least one mask token, got {num_mask_tokens}")
        dim = layout[0].dim
        self.grid, self.act_checkpoint = tuple(grid), act_checkpoint
        self.predictor_embed = nn.Linear(encoder_dim, dim)
        self.mask_tokens = nn.ParameterList(nn.Parameter(torch.zeros(1, 1, dim)) for _ in range(num_mask_tokens))
        self.predictor_pos_embed = None
        if not options.use_rope:
            table = sincos_table(sincos_layout, dim, self.grid)[None]  # (1, t*h*w, dim)
            self.predictor_pos_embed = nn.Parameter(table, requires_grad=False)
        self.predictor_blocks = nn.ModuleList(
            MultiScaleBlock(spec.dim, spec.dim_out, spec.num_heads, spec.input_size, drop_path=spec.drop_path,
                            has_cls_embed=False, options=options)
            for spec in layout
        )
        self.predictor_norm = LayerNorm6(dim)
        self.predictor_proj = nn.Linear(dim, encoder_dim)
        self.apply(init_weights)

    def _positions(self, grid: Grid) -> Tensor:
        """(1, t*h*w, dim) the sine-cosine table on `grid` (resized when it differs)."""
        return positions_on_grid({"joint": self.predictor_pos_embed}, self.grid, grid, 0)

    def forward(self, context: Tensor, context_index: Tensor, target_index: Tensor, grid: Grid, mask_set: int = 0) -> Tensor:
        """Predict the tokens at `target_index`.

        Args:
            context: (B, Kc, encoder_dim) the encoder's tokens at `context_index`.
            context_index, target_index: (B, Kc), (B, Kt) int64 indices into the flattened
                `grid` (t, h, w).
            mask_set: which mask token fills the targets (taken mod the number of tokens).
        Returns:
            (B, Kt, encoder_dim) predictions, in `target_index`'s order.
        """
        batch, kept = target_index.shape
        mask_token = self.mask_tokens[mask_set % len(self.mask_tokens)]
        tokens = torch.cat((self.predictor_embed(context), mask_token.expand(batch, kept, -1).to(context.dtype)), dim=1)
        index = torch.cat((context_index, target_index), dim=1)  # (B, Kc + Kt)
        if self.predictor_pos_embed is not None:
            tokens = tokens + gather_tokens(self._positions(grid).expand(batch, -1, -1), index)
        # Attention is permutation-equivariant: the tokens need no sorting by position.
        coordinates = token_coordinates(grid, index, tokens.device)
        for block in self.predictor_blocks:
            if self.act_checkpoint and self.training and torch.is_grad_enabled():
                tokens, _ = checkpoint(block, tokens, grid, coordinates, use_reentrant=False)
            else:
                tokens, _ = block(tokens, grid, coordinates)
        return self.predictor_proj(self.predictor_norm(tokens[:, -kept:]))
