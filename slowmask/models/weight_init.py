"""Initialization of MViT/ViT modules (MViTv2, MaskFeat): truncated normal weights."""

from torch import nn

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
