"""MaskFeat (Wei et al., CVPR 2022): predict a hand-made feature of the masked regions.

- The encoder sees every token: a dense MViT / ViT whose masked patch tokens are replaced
  by a learned `mask_token` before the class token and positions are added, so it knows
  where, but not what (`models.mvit.MaskFeatEncoder`). It stops at block
  max(MASK.PRETRAIN_DEPTH); no final norm.
- The head: a separate linear head per pretraining depth (LayerNorm + Linear,
  `models.mvit.SeparatePredictionHead`, PySlowFast's MASK.HEAD_TYPE "separate") maps each
  token to the target's width, no decoder; or, MASK.HEAD_TYPE "separate_xformer", MAE's
  decoder blocks on every token (`DENSE_HEADS`).
- The target: HOG of the token's pixels (targets/hog.py; MASK.TARGET "hog", or
  PySlowFast's MASK.PRED_HOG), computed from the clip without gradient.
- The loss: MODEL.LOSS_FUNC ("mse", PySlowFast's "multi_mse") on the masked tokens (or,
  MASK.LOSS_TOKENS, on the visible ones or all of them: configs/demo's moving-digit recipe),
  summed over the pretraining depths (`MaskedPretrainer.forward`).
- After an optimizer update: nothing (no EMA, no schedule of the method's own).

The state dict holds PySlowFast's MaskMViT names (encoder keys flat, the head under
`pred_head.`), so its checkpoints load both ways; the HOG filters PySlowFast saved as
buffers are dropped on loading (the target owns them here). SimMIM (simmim.py) and the
dense distillation (distillation.py) are this composition with another target.
"""

from typing import Any, Callable, Dict, Sequence, Tuple

from fvcore.common.config import CfgNode
from torch import nn

from slowmask import targets
from slowmask.geometry import TokenGeometry
from slowmask.models import (
    BlockOptions, DecoderPredictionHead, MaskFeatEncoder, SeparatePredictionHead, build_loss, trunk_args,
)

from .build import METHOD_REGISTRY
from .pretrainer import MaskedPretrainer

# PySlowFast's MaskMViT saved its HOG filters under this prefix.
PYSLOWFAST_HOG_PREFIX = "hogs."


def linear_heads(cfg: CfgNode, dims_in: Sequence[int], dims_out: Sequence[int]) -> nn.Module:
    """MASK.HEAD_TYPE "separate": a norm and a linear layer per pretraining depth."""
    return SeparatePredictionHead(dims_in, dims_out)


def decoder_head(cfg: CfgNode, dims_in: Sequence[int], dims_out: Sequence[int]) -> nn.Module:
    """MASK.HEAD_TYPE "separate_xformer": MAE's decoder (MASK.DECODER_DEPTH blocks of
    MASK.DECODER_EMBED_DIM) on every token of the one pretraining depth. A dense encoder's
    tokens already carry their positions and the mask token, so the decoder adds none."""
    if len(dims_in) != 1:
        raise ValueError(f'MASK.HEAD_TYPE "separate_xformer" takes one MASK.PRETRAIN_DEPTH, got {len(dims_in)}')
    return DecoderPredictionHead(
        dims_in[0], dims_out[0], depth=cfg.MASK.DECODER_DEPTH, dim=cfg.MASK.DECODER_EMBED_DIM, has_cls_embed=False,
        options=BlockOptions(mlp_ratio=cfg.MVIT.MLP_RATIO, qkv_bias=cfg.MVIT.QKV_BIAS, drop_rate=cfg.MVIT.DROPOUT_RATE),
    )


# MASK.HEAD_TYPE of a dense model: (cfg, widths in, target widths) -> head. SimMIM's and
# MaskFeat's papers use the linear one; MAE's decoder, which made MAE's last block learn real
# scans, did not help them there (README, "On real pixels").
DENSE_HEADS: Dict[str, Callable[[CfgNode, Sequence[int], Sequence[int]], nn.Module]] = {
    "separate": linear_heads,
    "separate_xformer": decoder_head,
}


def dense_parts(cfg: CfgNode, build_target: Callable[[CfgNode], nn.Module]) -> Tuple[nn.Module, nn.Module, nn.Module]:
    """(encoder, head, target) of a dense masked model from MVIT.*, MASK.PRETRAIN_DEPTH
    and MASK.HEAD_TYPE (DENSE_HEADS), the target made by `build_target(cfg)` (it sizes the
    head: a target knows its width for a token's pixels, HOG 3 * nbins * (ph/c) * (pw/c) for
    c-pixel cells)."""
    make_head = DENSE_HEADS.get(cfg.MASK.HEAD_TYPE)
    if make_head is None:
        raise ValueError(f"MASK.HEAD_TYPE {cfg.MASK.HEAD_TYPE!r} is not supported; use one of {', '.join(DENSE_HEADS)}")
    encoder = MaskFeatEncoder(pretrain_depth=cfg.MASK.PRETRAIN_DEPTH, **trunk_args(cfg))
    target = build_target(cfg)
    dims_out = [target.dim(TokenGeometry.from_config(cfg).stride_at(depth)) for depth in encoder.pretrain_depth]
    return encoder, make_head(cfg, encoder.out_dims, dims_out), target


@METHOD_REGISTRY.register(name="MaskFeat")
class MaskFeat(MaskedPretrainer):
    """MaskedPretrainer(MaskFeatEncoder, SeparatePredictionHead, target, loss) that reads
    PySlowFast's MaskMViT checkpoints (their HOG filter buffers dropped)."""

    def __init__(self, *parts: Any, **options: Any) -> None:
        """MaskedPretrainer's arguments."""
        super().__init__(*parts, **options)
        self.register_load_state_dict_pre_hook(_drop_pyslowfast_hog_filters)

    @classmethod
    def from_config(cls, cfg: CfgNode) -> "MaskFeat":
        """The target MASK.TARGET (or MASK.PRED_HOG) names, MODEL.LOSS_FUNC on
        MASK.LOSS_TOKENS."""
        encoder, head, target = dense_parts(cfg, targets.build_target)
        return cls(encoder, head, target, build_loss(cfg.MODEL.LOSS_FUNC), cfg.MASK.LOSS_TOKENS)


def _drop_pyslowfast_hog_filters(module: nn.Module, state_dict: Dict[str, Any], prefix: str, *_: Any) -> None:
    """PySlowFast's MaskMViT saved its fixed HOG gradient filters as buffers
    (`hogs.0.weight_x`, `hogs.0.weight_y`); slowmask's target owns them, so they are
    dropped when such a checkpoint is loaded."""
    for key in [k for k in state_dict if k.startswith(prefix + PYSLOWFAST_HOG_PREFIX)]:
        del state_dict[key]
