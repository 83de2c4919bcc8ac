"""MViT's transformer block: pooling attention and an MLP, each in a pre-norm residual.

When the block pools its queries the residual is max-pooled the same way
(`pool_skip`); when the width changes the residual is projected (`proj`), either
after the attention (DIM_MUL_IN_ATT) or after the MLP's norm (MViTv2's default).
"""

from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from slowmask.geometry import Grid

from .attention import LayerNorm6, MultiScaleAttention
from .pooling import pool_tokens

# Initialization of MViT/ViT modules (MViTv2, MaskFeat): truncated normal weights.
INIT_STD = 0.02


def init_weights(module: nn.Module) -> None:
    """Linear and convolution weights ~ truncated normal (std 0.02), Linear biases 0,
    LayerNorm 1 / 0. Use with `model.apply(init_weights)`."""
    if isinstance(module, (nn.Linear, nn.Conv2d, nn.Conv3d)):
        nn.init.trunc_normal_(module.weight, std=INIT_STD)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


@dataclass(frozen=True)
class BlockOptions:
    """The MultiScaleBlock arguments that every block of a network shares (MVIT.* keys)."""

    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    drop_rate: float = 0.0
    layer_scale_init_value: float = 0.0
    mode: str = "conv"
    pool_first: bool = False
    rel_pos_spatial: bool = False
    rel_pos_temporal: bool = False
    rel_pos_zero_init: bool = False
    residual_pooling: bool = False
    dim_mul_in_att: bool = False
    separate_qkv: bool = False
    use_sdpa: bool = True
    pad_to_fused: Optional[bool] = None
    use_rope: bool = False
    rope_exact: bool = False


class DropPath(nn.Module):
    """Stochastic depth (Huang et al. 2016): drop a residual branch per sample."""

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: Tensor) -> Tensor:
        """(B, ...) -> (B, ...), zeroed for a random subset of samples, rescaled."""
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        return x * x.new_empty(shape).bernoulli_(keep).div_(keep)


class Mlp(nn.Module):
    """fc1 -> activation -> dropout -> fc2 -> dropout on (..., in_features)."""

    def __init__(
        self,
        in_features: int,
        hidden_features: int,
        out_features: int,
        act_layer: Callable[[], nn.Module] = nn.GELU,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_features, out_features)
        self.drop = nn.Dropout(drop_rate) if drop_rate > 0.0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


def _layer_scale(init_value: float, width: int) -> Optional[nn.Parameter]:
    return nn.Parameter(init_value * torch.ones(width)) if init_value > 0 else None


class MultiScaleBlock(nn.Module):
    """One MViT block on (B, N, dim) tokens of a (t, h, w) grid -> (B, N', dim_out).

    Names follow PySlowFast: norm1, attn, drop_path, norm2, mlp.fc1/fc2, proj (width
    change), pool_skip (pooled residual), gamma_1/gamma_2 (layer scale).
    The pooling and relative-position arguments are MultiScaleAttention's.
    """

    def __init__(
        self,
        dim: int,
        dim_out: int,
        num_heads: int,
        input_size: Sequence[int],
        *,
        kernel_q: Sequence[int] = (),
        kernel_kv: Sequence[int] = (),
        stride_q: Sequence[int] = (1, 1, 1),
        stride_kv: Sequence[int] = (1, 1, 1),
        drop_path: float = 0.0,
        has_cls_embed: bool = True,
        options: BlockOptions = BlockOptions(),
        norm_layer: Callable[[int], nn.Module] = LayerNorm6,
        act_layer: Callable[[], nn.Module] = nn.GELU,
    ) -> None:
        super().__init__()
        self.dim, self.dim_out = dim, dim_out
        self.dim_mul_in_att = options.dim_mul_in_att
        self.num_prefix = 1 if has_cls_embed else 0
        att_dim = dim_out if options.dim_mul_in_att else dim
        self.norm1 = norm_layer(dim)
        self.attn = MultiScaleAttention(
            dim,
            att_dim,
            num_heads,
            input_size,
            qkv_bias=options.qkv_bias,
            drop_rate=options.drop_rate,
            kernel_q=kernel_q,
            kernel_kv=kernel_kv,
            stride_q=stride_q,
            stride_kv=stride_kv,
            norm_layer=norm_layer,
            has_cls_embed=has_cls_embed,
            mode=options.mode,
            pool_first=options.pool_first,
            rel_pos_spatial=options.rel_pos_spatial,
            rel_pos_temporal=options.rel_pos_temporal,
            rel_pos_zero_init=options.rel_pos_zero_init,
            residual_pooling=options.residual_pooling,
            separate_qkv=options.separate_qkv,
            use_sdpa=options.use_sdpa,
            pad_to_fused=options.pad_to_fused,
            use_rope=options.use_rope,
            rope_exact=options.rope_exact,
        )
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = norm_layer(att_dim)
        self.mlp = Mlp(att_dim, int(att_dim * options.mlp_ratio), dim_out, act_layer, options.drop_rate)
        self.gamma_1 = _layer_scale(options.layer_scale_init_value, att_dim)
        self.gamma_2 = _layer_scale(options.layer_scale_init_value, dim_out)
        self.proj = nn.Linear(dim, dim_out) if dim != dim_out else None
        self.pool_skip = None
        if any(s > 1 for s in stride_q):
            kernel_skip = tuple(s + 1 if s > 1 else s for s in stride_q)
            padding_skip = tuple(k // 2 for k in kernel_skip)
            self.pool_skip = nn.MaxPool3d(kernel_skip, tuple(stride_q), padding_skip, ceil_mode=False)

    def _branch(self, gamma: Optional[nn.Parameter], x: Tensor) -> Tensor:
        return self.drop_path(x if gamma is None else gamma * x)

    def forward(self, x: Tensor, grid: Grid, coordinates: Optional[Tensor] = None) -> Tuple[Tensor, Grid]:
        """(B, N, dim) on `grid` -> (B, N', dim_out) on the block's output grid
        (`coordinates`: the rotary positions' token coordinates, see MultiScaleAttention)."""
        x_norm = self.norm1(x)
        x_attn, out_grid = self.attn(x_norm, grid, coordinates)
        if self.dim_mul_in_att and self.proj is not None:
            x = self.proj(x_norm)
        x, _ = pool_tokens(x, self.pool_skip, grid, self.num_prefix)
        x = x + self._branch(self.gamma_1, x_attn)
        x_norm = self.norm2(x)
        x_mlp = self.mlp(x_norm)
        if not self.dim_mul_in_att and self.proj is not None:
            x = self.proj(x_norm)
        return x + self._branch(self.gamma_2, x_mlp), out_grid
