"""Pooling of token sequences over their (t, h, w) grid: MViT's pooling attention and
its pooled residual. A class token (or any prefix tokens) passes through unpooled."""

from typing import Callable, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from slowmask.geometry import Grid

POOL_MODES = ("conv", "conv_unshared", "max", "avg")


def make_pool(
    mode: str,
    channels: int,
    kernel: Sequence[int],
    stride: Sequence[int],
    norm_layer: Callable[[int], nn.Module],
) -> Tuple[Optional[nn.Module], Optional[nn.Module]]:
    """A pooling operator and the norm that follows it (convolutional modes only);
    (None, None) when `kernel` is empty (no pooling).

    "conv" / "conv_unshared" pool with a depthwise Conv3d over `channels`; "max" / "avg"
    with the parameter-free pools. Padding is kernel // 2, as in MViTv2.
    """
    if mode not in POOL_MODES:
        raise ValueError(f"pooling mode {mode!r} is not one of {POOL_MODES}")
    if len(kernel) == 0:
        return None, None
    kernel, stride = tuple(kernel), tuple(stride)
    padding = tuple(k // 2 for k in kernel)
    if mode == "max":
        return nn.MaxPool3d(kernel, stride, padding, ceil_mode=False), None
    if mode == "avg":
        return nn.AvgPool3d(kernel, stride, padding, ceil_mode=False), None
    conv = nn.Conv3d(channels, channels, kernel, stride=stride, padding=padding, groups=channels, bias=False)
    return conv, norm_layer(channels)


def pool_tokens(
    x: Tensor,
    pool: Optional[nn.Module],
    grid: Grid,
    num_prefix: int,
    norm: Optional[nn.Module] = None,
) -> Tuple[Tensor, Grid]:
    """Pool the grid tokens of `x` and return them with the new grid.

    Args:
        x: (B, N, C) or (B, heads, N, C) with N = num_prefix + t*h*w, tokens in (t, h, w) order.
        pool: a module on (B', C, t, h, w); None returns `x` unchanged.
        grid: (t, h, w) of the grid tokens.
        num_prefix: leading tokens (class token) that are not pooled.
        norm: applied after pooling to all tokens, prefix included (as PySlowFast).
    Returns:
        the pooled tokens, same rank as `x`, and the pooled grid (t', h', w').
    """
    if pool is None:
        return x, grid
    squeeze = x.ndim == 3
    if squeeze:
        x = x.unsqueeze(1)
    batch, heads, _, channels = x.shape
    t, h, w = grid
    prefix, tokens = x[:, :, :num_prefix], x[:, :, num_prefix:]
    # Channels-last: the tokens' own layout, and several times faster than the
    # channels-first one for a depthwise convolution's backward pass on the CPU.
    tokens = tokens.reshape(batch * heads, t, h, w, channels).permute(0, 4, 1, 2, 3)
    tokens = pool(tokens.contiguous(memory_format=torch.channels_last_3d))
    new_grid = tuple(int(s) for s in tokens.shape[2:])
    tokens = tokens.reshape(batch, heads, channels, -1).transpose(2, 3)
    x = torch.cat((prefix, tokens), dim=2)
    if norm is not None:
        x = norm(x)
    return (x.squeeze(1) if squeeze else x), new_grid
