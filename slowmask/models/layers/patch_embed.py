"""Patch embedding: a strided convolution from pixels to a (t, h, w) grid of tokens."""

from typing import Sequence, Tuple

from torch import Tensor, nn

from slowmask.geometry import Grid


class PatchEmbed(nn.Module):
    """(B, C, T, H, W) clip -> (B, t*h*w, D) tokens in (t, h, w) order, and (t, h, w).

    With `conv_2d` the kernel, stride and padding are (h, w) and every frame is embedded
    on its own (a Conv2d, PySlowFast's PATCH_2D for images): t = T. The layer is named
    `proj`, as in PySlowFast.
    """

    def __init__(
        self,
        in_chans: int,
        embed_dim: int,
        kernel: Sequence[int],
        stride: Sequence[int],
        padding: Sequence[int],
        conv_2d: bool = False,
    ) -> None:
        super().__init__()
        conv = nn.Conv2d if conv_2d else nn.Conv3d
        expected = 2 if conv_2d else 3
        for name, value in (("kernel", kernel), ("stride", stride), ("padding", padding)):
            if len(value) != expected:
                raise ValueError(
                    f"patch embedding {name} {list(value)} needs {expected} sizes "
                    f"({'(h, w) with a 2-D patch' if conv_2d else '(t, h, w)'})"
                )
        self.conv_2d = conv_2d
        self.proj = conv(in_chans, embed_dim, tuple(kernel), stride=tuple(stride), padding=tuple(padding))

    def forward(self, x: Tensor) -> Tuple[Tensor, Grid]:
        if x.ndim != 5:
            raise ValueError(f"expected a clip (B, C, T, H, W), got shape {tuple(x.shape)}")
        batch, channels, frames, height, width = x.shape
        if self.conv_2d:
            frames_as_images = x.transpose(1, 2).reshape(batch * frames, channels, height, width)
            embedded = self.proj(frames_as_images)
            embedded = embedded.reshape(batch, frames, *embedded.shape[1:]).transpose(1, 2)
        else:
            embedded = self.proj(x)
        grid = tuple(int(s) for s in embedded.shape[2:])
        return embedded.flatten(2).transpose(1, 2), grid
