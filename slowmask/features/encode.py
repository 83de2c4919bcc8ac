"""The encoder's tokens of a clip, for the two kinds of model slowmask builds."""

import torch
from torch import Tensor, nn


@torch.no_grad()
def encoder_tokens(model: nn.Module, x: Tensor) -> Tensor:
    """(B, 3, T, H, W) clip -> (B, N, D) grid tokens (no class token), (t, h, w) order.

    A masked pretrainer's sparse encoder (MAE) gives `encoder.forward_features(x)`, the
    encoder on all tokens; a dense one (an `encoder(x, mask)` returning per-depth features
    and grids, see MaskedPretrainer) gives its deepest pretraining depth, unmasked; a classifier
    with `forward_features` (MViT) gives its last block, before the final norm.
    """
    model.eval()
    encoder = getattr(model, "encoder", None)
    if hasattr(encoder, "forward_features"):  # a sparse encoder (MAE): all tokens, none dropped
        return encoder.forward_features(x)
    if encoder is not None:
        try:
            features, _ = encoder(x, None)
        except (AttributeError, TypeError) as error:
            raise TypeError(
                f"{type(encoder).__name__} cannot encode a clip without a mask ({error}); take features "
                "from a model whose encoder accepts mask=None (MaskFeat) or from a fine-tuned classifier"
            ) from error
        return features[-1]
    if hasattr(model, "forward_features"):
        tokens = model.forward_features(x)
        return tokens[:, getattr(model, "num_prefix", 0) :]
    raise TypeError(
        f"{type(model).__name__} has neither an `encoder(x, mask)` nor `forward_features(x)`: "
        "cannot take features from it"
    )
