"""Which of the encoder's features a probe or a feature file reads: the pooling.

Methods leave what they learn in different places. MaskFeat and MAE train every grid token
(the mean over them is what today's probes read); a classifier or a DINO-style method
trains its class token; a residual network's last block often holds less than its last
few together (DINO's linear evaluation reads the last 4 blocks, Caron et al. 2021,
appendix; iBOT and DINOv2 likewise). Each pooling gives, for a batch of clips,

    tokens (B, N, D')  what an attentive probe reads, N = t*h*w grid tokens;
    pooled (B, D')     what k-NN, the linear probe and features.npy read.

- "mean": the last block's grid tokens as `encoder_tokens` gives them, pooled by their mean
  (the default, and the only pooling before poolings were offered);
- "cls": the last block's class token as `pooled` (the model must have one);
  `tokens` as "mean";
- "mean_last_k": each of the last k blocks' grid tokens layer-normalized (no affine
  parameters: encoders differ in which outputs pass a trained norm, and the residual
  stream grows with depth), averaged over the k blocks token by token; pooled by the mean;
- "concat_last_k": the same k normalized blocks concatenated along the width
  (D' = k * D); pooled by the mean.
The k blocks must give tokens of one shape (an MViT's are those of its last stage).
"""

from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from slowmask.utils.errors import ConfigError

from .encode import encoder_tokens

DEFAULT_POOLING = "mean"


@dataclass
class PooledFeatures:
    """pooled (B, D') float and tokens (B, N, D') of a batch of clips."""

    pooled: Tensor
    tokens: Tensor


def encoder_trunk(model: nn.Module) -> nn.Module:
    """The module holding the encoder's `blocks`: `model.encoder` (a pretraining model) or
    `model` (a classifier)."""
    encoder = getattr(model, "encoder", None)
    trunk = encoder if encoder is not None else model
    if not isinstance(getattr(trunk, "blocks", None), nn.ModuleList):
        raise ConfigError(
            f"{type(trunk).__name__} has no `blocks` list to read layers or a class token from; probe it with "
            f"PROBE.POOLING {DEFAULT_POOLING} (--pooling {DEFAULT_POOLING})"
        )
    return trunk


@torch.no_grad()
def tokens_and_last_blocks(model: nn.Module, x: Tensor, k: int) -> Tuple[Tensor, List[Tensor]]:
    """`encoder_tokens(model, x)` (B, N, D), and the outputs (B, [1+]N, D) of the
    encoder's last `k` blocks (class token included) in block order, taken on the way."""
    blocks = encoder_trunk(model).blocks
    outputs: List[Tensor] = []
    handles = [block.register_forward_hook(lambda _module, _args, out: outputs.append(out[0]))
               for block in blocks[len(blocks) - k:]]
    try:
        tokens = encoder_tokens(model, x)
    finally:
        for handle in handles:
            handle.remove()
    return tokens, outputs


def _num_prefix(model: nn.Module) -> int:
    return int(getattr(encoder_trunk(model), "num_prefix", 0))


def _mean(model: nn.Module, x: Tensor, k: int) -> PooledFeatures:
    tokens = encoder_tokens(model, x)
    return PooledFeatures(tokens.mean(dim=1), tokens)


def _cls(model: nn.Module, x: Tensor, k: int) -> PooledFeatures:
    tokens, (last,) = tokens_and_last_blocks(model, x, 1)
    return PooledFeatures(last[:, 0], tokens)


def _normalized_last_k(model: nn.Module, x: Tensor, k: int) -> List[Tensor]:
    """The last k blocks' grid tokens (B, N, D), each layer-normalized without parameters."""
    prefix = _num_prefix(model)
    _, outputs = tokens_and_last_blocks(model, x, k)
    _check_one_shape(outputs)
    return [F.layer_norm(out[:, prefix:].float(), out.shape[-1:]) for out in outputs]


def _check_one_shape(outputs: List[Tensor]) -> None:
    """ConfigError when the blocks' outputs (B, [1+]N, D) differ in shape (an MViT's
    stages pool the grid and widen it), naming how many of the last share one."""
    shapes = [tuple(out.shape[1:]) for out in outputs]
    if len(set(shapes)) == 1:
        return
    k = len(shapes)
    same = next(i for i in range(1, k + 1) if i == k or shapes[-i - 1] != shapes[-1])
    raise ConfigError(
        f"the last {k} blocks give tokens of different shapes ({', '.join(map(str, shapes))}, with the class "
        f"token): the last {same} share one stage; set PROBE.POOL_LAST_K to at most {same}"
    )


def _mean_last_k(model: nn.Module, x: Tensor, k: int) -> PooledFeatures:
    tokens = torch.stack(_normalized_last_k(model, x, k)).mean(dim=0)
    return PooledFeatures(tokens.mean(dim=1), tokens)


def _concat_last_k(model: nn.Module, x: Tensor, k: int) -> PooledFeatures:
    tokens = torch.cat(_normalized_last_k(model, x, k), dim=-1)
    return PooledFeatures(tokens.mean(dim=1), tokens)


# PROBE.POOLING / --pooling: (model, clip (B, 3, T, H, W), k) -> PooledFeatures.
POOLINGS: Dict[str, Callable[[nn.Module, Tensor, int], PooledFeatures]] = {
    "mean": _mean,
    "cls": _cls,
    "mean_last_k": _mean_last_k,
    "concat_last_k": _concat_last_k,
}


def check_pooling(name: str) -> None:
    """ConfigError unless `name` is one of POOLINGS."""
    if name not in POOLINGS:
        raise ConfigError(f"unknown pooling {name!r} (PROBE.POOLING, --pooling): choose one of {', '.join(POOLINGS)}")


def check_pooling_fits(model: nn.Module, pooling: str, last_k: int, clip_shape: Sequence[int] = ()) -> None:
    """ConfigError when `pooling` cannot read `model` (found before anything is encoded):
    an unknown name, a class token the model lacks, more blocks than it has; with
    `clip_shape` (3, T, H, W), last blocks of different shapes (one zero clip encoded)."""
    check_pooling(pooling)
    if pooling == DEFAULT_POOLING:
        return  # encoder_tokens' features, whatever the model
    trunk = encoder_trunk(model)
    if pooling == "cls" and _num_prefix(model) != 1:
        raise ConfigError(f"{type(trunk).__name__} has no class token to pool: build it with MVIT.CLS_EMBED_ON "
                          "True, or choose PROBE.POOLING mean, mean_last_k or concat_last_k")
    if pooling.endswith("_last_k") and not 1 <= last_k <= len(trunk.blocks):
        raise ConfigError(f"the encoder has {len(trunk.blocks)} blocks: PROBE.POOL_LAST_K must be in "
                          f"[1, {len(trunk.blocks)}], got {last_k}")
    if pooling.endswith("_last_k") and clip_shape:
        device = next(model.parameters()).device
        was_training = model.training
        try:
            _check_one_shape(tokens_and_last_blocks(model, torch.zeros(1, *clip_shape, device=device), last_k)[1])
        finally:
            model.train(was_training)


def pooling_label(name: str, last_k: int) -> str:
    """How the output names a pooling: "mean", "cls", "mean_last_4", "concat_last_4"."""
    check_pooling(name)
    return name.replace("_k", f"_{last_k}") if name.endswith("_last_k") else name


@torch.no_grad()
def pooled_features(model: nn.Module, x: Tensor, pooling: str = DEFAULT_POOLING, last_k: int = 1,
                    ) -> PooledFeatures:
    """The features `pooling` (POOLINGS) reads of (B, 3, T, H, W) clips `x`, computed in
    float32; `last_k` blocks for the "*_last_k" poolings. The model is left in eval mode.
    ConfigError when the pooling cannot read this model (`check_pooling_fits`)."""
    check_pooling_fits(model, pooling, last_k)
    features = POOLINGS[pooling](model, x, last_k)
    return PooledFeatures(features.pooled.float(), features.tokens.float())


__all__ = ["DEFAULT_POOLING", "POOLINGS", "PooledFeatures", "check_pooling", "check_pooling_fits", "pooled_features",
           "pooling_label", "tokens_and_last_blocks"]
