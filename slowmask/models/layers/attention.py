"""MViTv2 multiscale (pooling) attention (Fan et al. 2021; Li et al. 2022).

Queries, keys and values are pooled over the token grid before attending: pooled
queries shrink the output grid (a new stage), pooled keys/values make attention cheap
on the large early grids. MViTv2 adds decomposed relative positions and residual
pooling (the pooled query is added to the output).

The relative positions enter `scaled_dot_product_attention` as extra query and key
channels, which makes q and k wider than v (96 + 22 = 118 at MViTv2-S's first stage).
FlashAttention and cuDNN attention take only q, k and v of one width, a multiple of 8;
otherwise CUDA falls back to a slower kernel, and so does the CPU (to the math path,
measured 1.2-1.75x slower on the attention cores of MViT at 8x112x112). So the extra
channels, and v, are padded with zeros to such a width (a zero channel adds nothing to
q . k, a zero column of v only a zero output column, sliced off).
"""

from functools import partial
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from slowmask.geometry import Grid
from .pooling import make_pool, pool_tokens
from .relative_position import decomposed_bias, decomposed_terms, key_indicators, table_length
from .rope import apply_rope, token_coordinates

# MViT's norm: LayerNorm with PySlowFast's epsilon.
LayerNorm6 = partial(nn.LayerNorm, eps=1e-6)

# FlashAttention and cuDNN attention need q, k and v of one head width, a multiple of this.
FUSED_WIDTH_MULTIPLE = 8

# Whether padding to a fused width is the faster path, per device type: measured on the CPU
# (above); on CUDA FlashAttention and cuDNN take nothing else. Other devices: not padded.
PADDING_IS_FASTER = {"cpu": True, "cuda": True}

# MVIT.ATTENTION values -> MultiScaleAttention's (use_sdpa, pad_to_fused); None: as
# PADDING_IS_FASTER says for the device.
ATTENTION_PATHS: Dict[str, Tuple[bool, Optional[bool]]] = {
    "auto": (True, None),
    "plain": (False, False),
    "sdpa": (True, False),
    "sdpa_padded": (True, True),
}


def attention_path(choice: str) -> Tuple[bool, Optional[bool]]:
    """(use_sdpa, pad_to_fused) for an MVIT.ATTENTION value; ValueError naming the choices."""
    if choice not in ATTENTION_PATHS:
        raise ValueError(f"MVIT.ATTENTION {choice!r} is not known; use one of {', '.join(map(repr, ATTENTION_PATHS))}")
    return ATTENTION_PATHS[choice]


def fused_width(width: int) -> int:
    """The least head width >= `width` that the fused kernels accept."""
    return -(-width // FUSED_WIDTH_MULTIPLE) * FUSED_WIDTH_MULTIPLE


def pads_on(device: torch.device, pad_to_fused: Optional[bool]) -> bool:
    """Whether attention on `device` pads to a fused width: as asked, or by default
    where PADDING_IS_FASTER says so."""
    return PADDING_IS_FASTER.get(device.type, False) if pad_to_fused is None else pad_to_fused


def widen(x: Tensor, extra: Optional[Tensor], padding: int) -> Tensor:
    """(B, heads, N, D) -> (B, heads, N, D + R + padding): `extra` ((B | 1, heads | 1, N, R),
    broadcast) and `padding` zero channels appended, in one copy."""
    parts = [x]
    if extra is not None:
        parts.append(extra.expand(*x.shape[:3], -1))
    if padding:
        parts.append(x.new_zeros(()).expand(*x.shape[:3], padding))
    return torch.cat(parts, dim=-1) if len(parts) > 1 else x


class MultiScaleAttention(nn.Module):
    """Pooling attention on (B, N, dim) tokens of a (t, h, w) grid, N = [1 +] t*h*w.

    Parameter names follow PySlowFast: `qkv` (or `q`, `k`, `v` with `pool_first` or
    `separate_qkv`), `pool_q/k/v` + `norm_q/k/v`, `rel_pos_h/w/t`, `proj`.

    Args:
        dim, dim_out: input and output widths.
        num_heads: attention heads; head width is dim_out // num_heads.
        input_size: (t, h, w) grid the relative-position tables are sized for.
        kernel_q, kernel_kv: pooling kernels; empty means no pooling.
        stride_q, stride_kv: pooling strides.
        mode: "conv" (depthwise conv per head), "conv_unshared" (with pool_first),
            "max" or "avg".
        pool_first: pool the input before projecting q, k, v.
        use_sdpa: attend with `scaled_dot_product_attention` (relative positions as
            extra query and key channels); False uses the explicit
            matmul-softmax-matmul path with the full additive bias.
        pad_to_fused: with SDPA, pad q, k and v to one width, a multiple of
            FUSED_WIDTH_MULTIPLE (True), or not (False); None: the faster per device.
        use_rope: 3-D rotary positions on q and k (rope.py; a ViT's attention: no pooling).
        rope_exact: a true rotation per channel pair instead of V-JEPA 2's layout (rope.py).
    """

    def __init__(
        self,
        dim: int,
        dim_out: int,
        num_heads: int,
        input_size: Sequence[int],
        *,
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        kernel_q: Sequence[int] = (),
        kernel_kv: Sequence[int] = (),
        stride_q: Sequence[int] = (1, 1, 1),
        stride_kv: Sequence[int] = (1, 1, 1),
        norm_layer: Callable[[int], nn.Module] = LayerNorm6,
        has_cls_embed: bool = True,
        mode: str = "conv",
        pool_first: bool = False,
        rel_pos_spatial: bool = False,
        rel_pos_temporal: bool = False,
        rel_pos_zero_init: bool = False,
        residual_pooling: bool = False,
        separate_qkv: bool = False,
        use_sdpa: bool = True,
        pad_to_fused: Optional[bool] = None,
        use_rope: bool = False,
        rope_exact: bool = False,
    ) -> None:
        super().__init__()
        if mode == "conv_unshared" and not pool_first:
            raise ValueError('attention pooling mode "conv_unshared" needs pool_first=True')
        if use_rope and (kernel_q or kernel_kv or rel_pos_spatial or rel_pos_temporal):
            raise ValueError("rotary positions (MVIT.USE_ROPE) need attention without pooling or relative positions")
        self.use_rope, self.rope_exact = use_rope, rope_exact
        self.num_heads, self.dim_out = num_heads, dim_out
        head_dim = dim_out // num_heads
        self.scale = head_dim**-0.5
        self.num_prefix = 1 if has_cls_embed else 0
        self.pool_first, self.separate_qkv = pool_first, separate_qkv
        self.residual_pooling, self.use_sdpa = residual_pooling, use_sdpa
        self.pad_to_fused = pad_to_fused
        # Pool-first folds the input into heads ("conv") or keeps it whole ("conv_unshared").
        self.fold = 1 if mode == "conv_unshared" else num_heads
        if pool_first or separate_qkv:
            self.q = nn.Linear(dim, dim_out, bias=qkv_bias)
            self.k = nn.Linear(dim, dim_out, bias=qkv_bias)
            self.v = nn.Linear(dim, dim_out, bias=qkv_bias)
        else:
            self.qkv = nn.Linear(dim, dim_out * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim_out, dim_out)
        self.proj_drop = nn.Dropout(drop_rate) if drop_rate > 0.0 else nn.Identity()

        pool_dim = (dim if pool_first else dim_out) // self.fold
        self.pool_q, self.norm_q = make_pool(mode, pool_dim, kernel_q, stride_q, norm_layer)
        self.pool_k, self.norm_k = make_pool(mode, pool_dim, kernel_kv, stride_kv, norm_layer)
        self.pool_v, self.norm_v = make_pool(mode, pool_dim, kernel_kv, stride_kv, norm_layer)
        self._init_rel_pos(input_size, stride_q, stride_kv, head_dim, rel_pos_spatial, rel_pos_temporal)
        if not rel_pos_zero_init:
            for table in (self.rel_pos_h, self.rel_pos_w, self.rel_pos_t):
                if table is not None:
                    nn.init.trunc_normal_(table, std=0.02)

    def _init_rel_pos(
        self,
        input_size: Sequence[int],
        stride_q: Sequence[int],
        stride_kv: Sequence[int],
        head_dim: int,
        spatial: bool,
        temporal: bool,
    ) -> None:
        """Tables sized as PySlowFast sizes them, from the nominal input grid."""
        t, h, w = input_size
        self.rel_pos_h = self.rel_pos_w = self.rel_pos_t = None
        if spatial:
            length_h = table_length(h // stride_q[1], h // stride_kv[1])
            length_w = table_length(w // stride_q[2], w // stride_kv[2])
            self.rel_pos_h = nn.Parameter(torch.zeros(length_h, head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(length_w, head_dim))
        if temporal:
            self.rel_pos_t = nn.Parameter(torch.zeros(2 * t - 1, head_dim))

    def _heads(self, x: Tensor) -> Tensor:
        """(B, N, C) -> (B, heads, N, C / heads)."""
        batch, tokens, _ = x.shape
        return x.reshape(batch, tokens, self.num_heads, -1).transpose(1, 2)

    def _pool_qkv(self, q: Tensor, k: Tensor, v: Tensor, grid: Grid) -> Tuple[Tensor, Tensor, Tensor, Grid, Grid]:
        q, q_grid = pool_tokens(q, self.pool_q, grid, self.num_prefix, self.norm_q)
        k, k_grid = pool_tokens(k, self.pool_k, grid, self.num_prefix, self.norm_k)
        v, _ = pool_tokens(v, self.pool_v, grid, self.num_prefix, self.norm_v)
        return q, k, v, q_grid, k_grid

    def _project_and_pool(self, x: Tensor, grid: Grid) -> Tuple[Tensor, Tensor, Tensor, Grid, Grid]:
        """(B, N, dim) -> q, k, v each (B, heads, N', head_dim), and the q and k grids."""
        batch, tokens, _ = x.shape
        if self.pool_first:
            folded = x.reshape(batch, tokens, self.fold, -1).transpose(1, 2)
            q, k, v, q_grid, k_grid = self._pool_qkv(folded, folded, folded, grid)
            q, k, v = (t.transpose(1, 2).reshape(batch, t.shape[2], -1) for t in (q, k, v))
            return self._heads(self.q(q)), self._heads(self.k(k)), self._heads(self.v(v)), q_grid, k_grid
        if self.separate_qkv:
            q, k, v = self._heads(self.q(x)), self._heads(self.k(x)), self._heads(self.v(x))
        else:
            qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
            q, k, v = qkv.unbind(0)
        return self._pool_qkv(q, k, v, grid)

    @property
    def has_rel_pos(self) -> bool:
        return self.rel_pos_h is not None or self.rel_pos_t is not None

    def _attend_plain(self, q: Tensor, k: Tensor, v: Tensor, q_grid: Grid, k_grid: Grid) -> Tensor:
        """softmax(q k^T * scale + bias) v, each (B, heads, N, head_dim), the bias built
        in full (the reference path)."""
        logits = (q * self.scale) @ k.transpose(-2, -1)
        if self.has_rel_pos:
            tables = (self.rel_pos_h, self.rel_pos_w, self.rel_pos_t)
            logits = logits + decomposed_bias(q, q_grid, k_grid, *tables, self.num_prefix)
        return logits.softmax(dim=-1) @ v

    def _attend_sdpa(self, q: Tensor, k: Tensor, v: Tensor, q_grid: Grid, k_grid: Grid) -> Tensor:
        """The same through `scaled_dot_product_attention`, the relative-position bias
        factored into extra query and key channels (relative_position.py): no mask, so
        the fused kernel runs forward and backward. The query terms are divided by the
        scale that SDPA multiplies every logit by. Where `pads_on` the device, q, k and
        v are zero-padded to one fused width and the output sliced back."""
        head_dim = v.shape[-1]
        terms = keys = None
        if self.has_rel_pos:
            tables = (self.rel_pos_h, self.rel_pos_w, self.rel_pos_t)
            terms = decomposed_terms(q, q_grid, k_grid, *tables, self.num_prefix) / self.scale
            keys = key_indicators(
                k_grid, self.rel_pos_t is not None, self.rel_pos_h is not None, self.num_prefix, k.dtype, k.device
            )
        width = head_dim + (0 if terms is None else terms.shape[-1])
        pad = pads_on(q.device, self.pad_to_fused)
        padding = fused_width(width) - width if pad else 0
        q, k = widen(q, terms, padding), widen(k, keys, padding)
        if pad:
            v = widen(v, None, q.shape[-1] - head_dim)
        out = F.scaled_dot_product_attention(q, k, v, scale=self.scale)
        return out if out.shape[-1] == head_dim else out[..., :head_dim]

    def forward(self, x: Tensor, grid: Grid, coordinates: Optional[Tensor] = None) -> Tuple[Tensor, Grid]:
        """(B, N, dim) tokens on `grid` -> (B, N_q, dim_out) tokens on the pooled query grid.

        `coordinates` (B | 1, N - prefix, 3): the (t, h, w) coordinates of the grid tokens
        for rotary positions (`rope.token_coordinates`), when they are not every token of
        `grid` in order (a sparse encoder's visible tokens); unused without `use_rope`.
        """
        batch = x.shape[0]
        q, k, v, q_grid, k_grid = self._project_and_pool(x, grid)
        if self.use_rope:
            if coordinates is None:
                coordinates = token_coordinates(grid, None, x.device)
            q = apply_rope(q, coordinates, self.num_prefix, self.rope_exact)
            k = apply_rope(k, coordinates, self.num_prefix, self.rope_exact)
        attend = self._attend_sdpa if self.use_sdpa else self._attend_plain
        out = attend(q, k, v, q_grid, k_grid)
        if self.residual_pooling:
            p = self.num_prefix
            out = torch.cat((out[:, :, :p], out[:, :, p:] + q[:, :, p:]), dim=2)
        out = out.transpose(1, 2).reshape(batch, -1, self.dim_out)
        return self.proj_drop(self.proj(out)), q_grid
