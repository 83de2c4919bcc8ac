"""MAE (He et al., CVPR 2022) and VideoMAE / MAE-ST (Tong et al., 2022; Feichtenhofer et
al., 2022): a sparse encoder and a light decoder reconstruct the masked pixels.

- The encoder sees the visible tokens only, gathered out of the sequence (90 % of a
  video's tube-masked tokens never enter it), then a LayerNorm
  (`models.mae.MAEEncoder`; a ViT: no pooling, no relative positions).
- The decoder sees every token: the encoder's output carried to the decoder's width,
  a learned mask token at each masked position, the decoder's own positions; MASK.
  DECODER_DEPTH blocks of MASK.DECODER_EMBED_DIM, a norm and a linear projection to the
  target (`models.decoder_head.DecoderPredictionHead`, MASK.HEAD_TYPE "separate_xformer").
- The target: the masked tokens' pixels, normalized per patch (targets/pixel.py,
  MASK.NORM_PRED_PIXEL; with MASK.TIME_STRIDE_LOSS the first frame of a 2-frame tube).
- The loss: MODEL.LOSS_FUNC ("mse") on the masked tokens.
- After an optimizer update: nothing.

The state dict is PySlowFast's MAE (encoder, `norm`, `decoder_embed`, `mask_token`,
decoder positions at the top level; decoder blocks under `pred_head.transforms.0`).
VideoMAE V2 (videomae_v2.py) and MVD (distillation.py) are this composition with a
decoder mask and a teacher target.
"""

from typing import Callable, Tuple

from fvcore.common.config import CfgNode
from torch import nn

from slowmask import targets
from slowmask.geometry import TokenGeometry
from slowmask.models import BlockOptions, DecoderPredictionHead, MAEEncoder, build_loss, trunk_args

from .build import METHOD_REGISTRY
from .pretrainer import MaskedPretrainer


def check_mae_supported(cfg: CfgNode) -> None:
    """The MAE keys the sparse composition does not build fail here, naming the key."""
    unsupported = {
        'MASK.HEAD_TYPE must be "separate_xformer" (the transformer decoder)': cfg.MASK.HEAD_TYPE
        != "separate_xformer",
        "MASK.PRETRAIN_DEPTH must name one block": len(cfg.MASK.PRETRAIN_DEPTH) != 1,
        "MASK.PER_FRAME_MASKING is not supported (use AUG.MASK_TYPE)": cfg.MASK.PER_FRAME_MASKING,
        "MASK.DEC_KV_KERNEL / DEC_KV_STRIDE (decoder pooling) are not supported": bool(
            cfg.MASK.DEC_KV_KERNEL or cfg.MASK.DEC_KV_STRIDE
        ),
    }
    wrong = [message for message, bad in unsupported.items() if bad]
    if wrong:
        raise ValueError("MAE: " + "; ".join(wrong))


def sparse_parts(cfg: CfgNode, build_target: Callable[[CfgNode], nn.Module]) -> Tuple[MAEEncoder, nn.Module, nn.Module]:
    """(encoder, decoder head, target) of a sparse masked model from MVIT.*, MASK.DECODER_*
    and MASK.PRETRAIN_DEPTH (the encoder's last block), the target made by
    `build_target(cfg)` (its width per token sizes the decoder's projection)."""
    check_mae_supported(cfg)
    args = trunk_args(cfg)
    depth = cfg.MASK.PRETRAIN_DEPTH[0]
    args["layout"] = args["layout"][: depth + 1]
    encoder = MAEEncoder(
        decoder_dim=cfg.MASK.DECODER_EMBED_DIM, decoder_sep_pos_embed=cfg.MASK.DECODER_SEP_POS_EMBED, **args
    )
    target = build_target(cfg)
    head = DecoderPredictionHead(
        cfg.MASK.DECODER_EMBED_DIM,
        target.dim(TokenGeometry.from_config(cfg).stride_at(depth)),
        depth=cfg.MASK.DECODER_DEPTH,
        dim=cfg.MASK.DECODER_EMBED_DIM,
        has_cls_embed=cfg.MVIT.CLS_EMBED_ON,
        options=BlockOptions(mlp_ratio=cfg.MVIT.MLP_RATIO, qkv_bias=cfg.MVIT.QKV_BIAS, drop_rate=cfg.MVIT.DROPOUT_RATE),
    )
    return encoder, head, target


@METHOD_REGISTRY.register(name="MAE")
class MAE(MaskedPretrainer):
    """MaskedPretrainer(MAEEncoder, DecoderPredictionHead, target, loss)."""

    @classmethod
    def from_config(cls, cfg: CfgNode) -> "MAE":
        """The target MASK.TARGET names (pixels by default), MODEL.LOSS_FUNC on MASK.LOSS_TOKENS."""
        encoder, head, target = sparse_parts(cfg, targets.build_target)
        return cls(encoder, head, target, build_loss(cfg.MODEL.LOSS_FUNC), cfg.MASK.LOSS_TOKENS)
