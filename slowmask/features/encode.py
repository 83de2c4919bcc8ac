"""The encoder's tokens of a clip, for the two kinds of model slowmask builds, and the
encoder alone as a module (`TokenEncoder`, what tools/export.py --encoder writes)."""

from typing import Dict, List, Tuple

import torch
from torch import Tensor, nn

# What the tokens are, per kind of model (the export metadata's "output").
CLASS_TOKEN_NOTE = "no class token: the N = t*h*w grid tokens in (t, h, w) order"


@torch.no_grad()
def encoder_tokens(model: nn.Module, x: Tensor) -> Tensor:
    """(B, 3, T, H, W) clip -> (B, N, D) grid tokens (no class token), (t, h, w) order,
    in eval mode and without gradient (see `tokens_of`)."""
    model.eval()
    return tokens_of(model, x)


def tokens_of(model: nn.Module, x: Tensor) -> Tensor:
    """(B, 3, T, H, W) clip -> (B, N, D) grid tokens (no class token), (t, h, w) order.

    A masked pretrainer's sparse encoder (MAE) gives `encoder.forward_features(x)`, the
    encoder on all tokens, after its final norm; a dense one (an `encoder(x, mask)`
    returning per-depth features and grids, see MaskedPretrainer) gives its deepest
    pretraining depth, unmasked; a classifier with `forward_features` (MViT) gives its last
    block, before the final norm (which it applies to the pooled vector).
    """
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


def tokens_meaning(model: nn.Module) -> str:
    """What `tokens_of(model, x)` holds, in words (its last step, whether normalized)."""
    encoder = getattr(model, "encoder", None)
    if hasattr(encoder, "forward_features"):
        where = "the sparse encoder's last block on all tokens (none masked), after its final norm"
    elif encoder is not None:
        where = "the dense encoder's deepest pretraining block (MASK.PRETRAIN_DEPTH), nothing masked, no norm"
    else:
        where = "the classifier's last block, before its final norm and head"
    return f"{where}; {CLASS_TOKEN_NOTE}"


class TokenEncoder(nn.Module):
    """The encoder of a model alone: (B, 3, T, H, W) normalized clip -> (B, N, D) its
    final tokens, as `tokens_of` takes them (no class token). `without_unused` strips the
    tensors this path never reads (a classifier's head and norm, MAE's decoder input)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return tokens_of(self.model, x)


def unused_tensors(program: "torch.export.ExportedProgram") -> List[str]:
    """Names of the parameters and buffers an exported program takes but never reads."""
    signature = program.graph_signature
    lifted: Dict[str, str] = {**signature.inputs_to_parameters, **signature.inputs_to_buffers}
    return sorted(
        lifted[node.name] for node in program.graph.nodes
        if node.op == "placeholder" and node.name in lifted and not node.users
    )


def without_unused(module: nn.Module, example: Tensor) -> Tuple[nn.Module, List[str]]:
    """`module` with the parameters and buffers its forward on `example` never reads
    removed (found by exporting it once: each lifted tensor without a user), and their
    names. Removed in place: pass a copy to keep the original whole.

    Raises:
        RuntimeError: the module without them gives another output on `example` (a
            forward that looks tensors up by name would skip a removed one).
    """
    with torch.no_grad():
        program = torch.export.export(module, (example,))
        whole = module(example)
    unused = unused_tensors(program)
    for name in unused:
        owner, _, leaf = name.rpartition(".")
        delattr(module.get_submodule(owner), leaf)
    with torch.no_grad():
        difference = float((module(example) - whole).abs().max())
    if difference != 0.0:
        raise RuntimeError(f"{type(module).__name__} gives other outputs without {', '.join(unused)} (largest "
                           f"difference {difference:.2e}): they are read after all")
    return module, unused
