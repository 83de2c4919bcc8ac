"""MViTv2 (Li et al. 2022) for video and images; ViT is its case without pooling.

`MViTTrunk` is what every MViT-based model shares: patch embedding, class token,
absolute position embeddings and the blocks. `MViT` adds the final norm and the
classifier head (`TransformerBasicHead`). `MaskFeatEncoder` is MaskFeat's dense encoder
(Wei et al. 2022, sec. 3): every token goes through the network, masked patch tokens
replaced by a learned `mask_token` before the class token and the positions are added,
so the model knows where, but not what; `SeparatePredictionHead` maps its tokens to the
targets. Parameter names are PySlowFast's, so its checkpoints load as they are.
"""

import logging
from typing import Any, Callable, Collection, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from slowmask.geometry import Grid, token_grid
from slowmask.masking.grids import upsample_mask

from .layers.attention import LayerNorm6
from .layers.block import INIT_STD, BlockOptions, MultiScaleBlock, init_weights
from .layers.layout import BlockLayout
from .layers.patch_embed import PatchEmbed
from .layers.position import learned_tables, positions_on_grid, sincos_table
from .layers.rope import check_rope_layout, token_coordinates

logger = logging.getLogger(__name__)

# PySlowFast's names of the encoder's learned position tables, by role (models/layers/position.py).
POS_EMBED_NAMES = {
    "joint": "pos_embed",
    "spatial": "pos_embed_spatial",
    "temporal": "pos_embed_temporal",
    "class": "pos_embed_class",
}


def _as_3d(sizes: Sequence[int], pad_value: int, patch_2d: bool) -> Tuple[int, int, int]:
    """A 2-D patch's (h, w) sizes as (t, h, w), the time axis untouched."""
    return tuple(([pad_value] if patch_2d else []) + [int(s) for s in sizes])


class MViTTrunk(nn.Module):
    """Patch embedding + class token + position embedding + MultiScaleBlocks.

    Args:
        layout: one BlockLayout per block (see `layout.mvit_layout`).
        input_size: (T, H, W) of the clips the position embeddings are sized for;
            other sizes work, the absolute embeddings are interpolated.
        patch_kernel, patch_stride, patch_padding: (t, h, w), or (h, w) with `patch_2d`.
        options: arguments shared by every block.
        cls_embed_on: prepend a class token (`cls_token`).
        use_abs_pos: learned absolute position embedding: `pos_embed` (1, [1+]N, D),
            or with `sep_pos_embed` `pos_embed_spatial` (1, h*w, D),
            `pos_embed_temporal` (1, t, D) and `pos_embed_class` (1, 1, D).
        fixed_sincos_pos: `pos_embed` holds a frozen 3-D sine-cosine table instead.
        sincos_layout: that table's layout, a `position.SINCOS_LAYOUTS` name
            (PySlowFast's, or V-JEPA's).
        norm_stem: LayerNorm (`norm_stem`) after the position embedding.
        act_checkpoint: recompute each block in the backward pass (saves memory).
    """

    def __init__(
        self,
        layout: Sequence[BlockLayout],
        *,
        input_size: Sequence[int],
        patch_kernel: Sequence[int],
        patch_stride: Sequence[int],
        patch_padding: Sequence[int],
        patch_2d: bool = False,
        in_chans: int = 3,
        options: BlockOptions = BlockOptions(),
        cls_embed_on: bool = True,
        use_abs_pos: bool = True,
        sep_pos_embed: bool = False,
        fixed_sincos_pos: bool = False,
        sincos_layout: str = "pyslowfast",
        norm_stem: bool = False,
        act_checkpoint: bool = False,
    ) -> None:
        super().__init__()
        if not layout:
            raise ValueError("an MViT needs at least one block")
        if options.use_rope:
            check_rope_layout(layout, options.rel_pos_spatial or options.rel_pos_temporal)
        embed_dim = layout[0].dim
        self.num_prefix = 1 if cls_embed_on else 0
        self.act_checkpoint = act_checkpoint
        self.patch_embed = PatchEmbed(in_chans, embed_dim, patch_kernel, patch_stride, patch_padding, patch_2d)
        self.patch_grid = token_grid(
            input_size,
            _as_3d(patch_kernel, 1, patch_2d),
            _as_3d(patch_stride, 1, patch_2d),
            _as_3d(patch_padding, 0, patch_2d),
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if cls_embed_on else None
        if self.cls_token is not None:
            nn.init.trunc_normal_(self.cls_token, std=INIT_STD)
        self._init_pos_embed(embed_dim, use_abs_pos, sep_pos_embed, fixed_sincos_pos, sincos_layout)
        self.pos_drop = nn.Dropout(options.drop_rate) if options.drop_rate > 0.0 else nn.Identity()
        self.norm_stem = LayerNorm6(embed_dim) if norm_stem else None
        self.blocks = nn.ModuleList(
            MultiScaleBlock(
                spec.dim,
                spec.dim_out,
                spec.num_heads,
                spec.input_size,
                kernel_q=spec.kernel_q,
                kernel_kv=spec.kernel_kv,
                stride_q=spec.stride_q,
                stride_kv=spec.stride_kv,
                drop_path=spec.drop_path,
                has_cls_embed=cls_embed_on,
                options=options,
            )
            for spec in layout
        )
        self.apply(init_weights)

    def _init_pos_embed(self, dim: int, use_abs_pos: bool, separate: bool, fixed_sincos: bool, layout: str) -> None:
        self.use_abs_pos, self.sep_pos_embed = use_abs_pos, separate
        if fixed_sincos and (separate or not use_abs_pos):
            raise ValueError("fixed sine-cosine positions need use_abs_pos on and sep_pos_embed off")
        if not use_abs_pos:
            return
        tables = learned_tables(self.patch_grid, dim, self.num_prefix, separate, INIT_STD)
        for role, table in tables.items():
            setattr(self, POS_EMBED_NAMES[role], table)
        if fixed_sincos:
            self.pos_embed.requires_grad_(False)
            with torch.no_grad():
                self.pos_embed.zero_()
                self.pos_embed[0, self.num_prefix :].copy_(sincos_table(layout, dim, self.patch_grid))

    @property
    def embed_dim(self) -> int:
        return self.blocks[0].dim

    def _abs_pos_embed(self, grid: Grid) -> Tensor:
        """(1, [1+]t*h*w, D) position embedding for a token grid."""
        return positions_on_grid(self.position_tables(POS_EMBED_NAMES), self.patch_grid, grid, self.num_prefix)

    def position_tables(self, names: Mapping[str, str]) -> Dict[str, Optional[Tensor]]:
        """The learned tables this model holds under `names` (role -> parameter name)."""
        return {role: getattr(self, name) for role, name in names.items() if hasattr(self, name)}

    def add_cls_and_pos(self, tokens: Tensor, grid: Grid) -> Tensor:
        """(B, N, D) patch tokens -> (B, [1+]N, D) with class token and positions."""
        if self.cls_token is not None:
            tokens = torch.cat((self.cls_token.expand(tokens.shape[0], -1, -1), tokens), dim=1)
        if self.use_abs_pos:
            tokens = tokens + self._abs_pos_embed(grid)
        tokens = self.pos_drop(tokens)
        return tokens if self.norm_stem is None else self.norm_stem(tokens)

    def forward_blocks(
        self, x: Tensor, grid: Grid, taps: Collection[int] = (), positions: Optional[Tensor] = None
    ) -> Tuple[Tensor, Grid, List[Tuple[Tensor, Grid]]]:
        """Run the blocks on (B, [1+]N, D) tokens of `grid`.

        `positions` (B, N) int64: the tokens' indices in the flattened `grid` when they are
        not all of it in order (a sparse encoder's visible tokens), for rotary positions.
        Returns the last block's tokens and grid, and the (tokens, grid) after each
        block whose index is in `taps`, in block order.
        """
        tapped = []
        coordinates = token_coordinates(grid, positions, x.device) if self.blocks[0].attn.use_rope else None
        for index, block in enumerate(self.blocks):
            if self.act_checkpoint and self.training and torch.is_grad_enabled():
                x, grid = checkpoint(block, x, grid, coordinates, use_reentrant=False)
            else:
                x, grid = block(x, grid, coordinates)
            if index in taps:
                tapped.append((x, grid))
        return x, grid, tapped


class MViT(MViTTrunk):
    """MViTv2 / ViT classifier: (B, 3, T, H, W) clip -> (B, num_classes) logits.

    Args:
        num_classes: classifier outputs.
        head_dropout: dropout before `head.projection`.
        use_mean_pooling: classify the mean of the grid tokens (then `norm`); otherwise
            the normalized class token, or the mean of normalized tokens without one.
        head_init_scale: factor on the head's initial weights (MVIT.HEAD_INIT_SCALE).
        detach_final_fc: train only the head's projection.
        linear_probe: MAE's linear probing: a BatchNorm without affine (`head.bn`) before
            the projection; every parameter outside `head` frozen, and kept in eval mode
            (no dropout, no drop path) whatever `train()` says.
        trunk_args: MViTTrunk's arguments.
    """

    def __init__(
        self,
        layout: Sequence[BlockLayout],
        *,
        num_classes: int,
        head_dropout: float = 0.0,
        use_mean_pooling: bool = False,
        head_init_scale: float = 1.0,
        detach_final_fc: bool = False,
        linear_probe: bool = False,
        **trunk_args: Any,
    ) -> None:
        super().__init__(layout, **trunk_args)
        dim = layout[-1].dim_out
        self.use_mean_pooling = use_mean_pooling
        self.norm = LayerNorm6(dim)
        self.head = TransformerBasicHead(dim, num_classes, head_dropout, detach_final_fc, input_norm=linear_probe)
        with torch.no_grad():
            self.head.projection.weight.mul_(head_init_scale)
            self.head.projection.bias.mul_(head_init_scale)
        self.linear_probe = linear_probe
        if linear_probe:
            for name, param in self.named_parameters():
                param.requires_grad_(name.startswith("head."))
        logger.debug("MViT with %d blocks, token grid %s", len(layout), self.patch_grid)

    def train(self, mode: bool = True) -> "MViT":
        """As nn.Module.train; under linear probing everything but the head stays in eval mode."""
        super().train(mode)
        if self.linear_probe:
            for name, child in self.named_children():
                child.train(mode and name == "head")
        return self

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, 3, T, H, W) -> (B, [1+]N, D) tokens after the last block (before `norm`,
        which forward_head applies in PySlowFast's order)."""
        tokens, grid = self.patch_embed(x)
        out, _, _ = self.forward_blocks(self.add_cls_and_pos(tokens, grid), grid)
        return out

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """(B, [1+]N, D) tokens -> (B, num_classes) logits, or (B, D) with pre_logits."""
        if self.use_mean_pooling:
            pooled = self.norm(x[:, self.num_prefix :].mean(dim=1))
        elif self.num_prefix:
            pooled = self.norm(x[:, 0])
        else:
            pooled = self.norm(x).mean(dim=1)
        return pooled if pre_logits else self.head(pooled)

    def forward(self, x: Tensor) -> Tensor:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.linear_probe):
            pooled = self.forward_head(self.forward_features(x), pre_logits=True)
        return self.head(pooled)


# Output heads: the classifier of MViT and the per-token prediction head of MaskFeat.


class TransformerBasicHead(nn.Module):
    """(B, dim_in) pooled features -> (B, num_classes) logits: [`bn`,] dropout, `projection`.

    Args:
        detach_final_fc: stop the gradient before the projection (MODEL.DETACH_FINAL_FC).
        input_norm: a BatchNorm without affine parameters (`bn`) first, as MAE's linear
            probe (He et al. 2022, appendix A.2): it rescales features whose magnitudes
            differ across pretraining methods, and is still a linear classifier.
    """

    def __init__(
        self,
        dim_in: int,
        num_classes: int,
        dropout_rate: float = 0.0,
        detach_final_fc: bool = False,
        input_norm: bool = False,
    ) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(dim_in, affine=False, eps=1e-6) if input_norm else None
        self.dropout = nn.Dropout(dropout_rate) if dropout_rate > 0.0 else nn.Identity()
        self.projection = nn.Linear(dim_in, num_classes, bias=True)
        self.detach_final_fc = detach_final_fc
        self.apply(init_weights)

    def forward(self, x: Tensor) -> Tensor:
        if self.bn is not None:
            x = self.bn(x)
        x = self.dropout(x)
        if self.detach_final_fc:
            x = x.detach()
        return self.projection(x)


class SeparatePredictionHead(nn.Module):
    """MaskFeat's prediction head (PySlowFast's MSSeparateHead, MASK.HEAD_TYPE "separate"):
    for each pretraining depth a LayerNorm (`transforms.i.0`) and a Linear
    (`projections.i`) applied to every token.

    Args:
        dims_in: width of the features at each depth.
        dims_out: width of the target at each depth (e.g. 108 for HOG of 16x16 pixels).
    """

    def __init__(
        self,
        dims_in: Sequence[int],
        dims_out: Sequence[int],
        norm_layer: Callable[[int], nn.Module] = LayerNorm6,
    ) -> None:
        super().__init__()
        if len(dims_in) != len(dims_out):
            raise ValueError(f"one output width per input: got {list(dims_in)} and {list(dims_out)}")
        self.transforms = nn.ModuleList(nn.Sequential(norm_layer(d)) for d in dims_in)
        self.projections = nn.ModuleList(nn.Linear(d, o, bias=True) for d, o in zip(dims_in, dims_out))
        self.apply(init_weights)

    def forward(self, features: Sequence[Tensor]) -> List[Tensor]:
        """[(B, N_i, dims_in[i])] -> [(B, N_i, dims_out[i])]."""
        if len(features) != len(self.projections):
            raise ValueError(f"expected {len(self.projections)} feature maps, got {len(features)}")
        return [proj(transform(x)) for x, transform, proj in zip(features, self.transforms, self.projections)]


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
