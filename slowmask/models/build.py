"""Models from the configuration. The builders here are the only code of
slowmask.models that reads `cfg`; every module takes plain arguments.

Registered builders (MODEL.MODEL_NAME): "MViT" (classifier; ViT is MViT without
pooling), "MaskMViT" (dense encoder with mask token: MaskFeat, SimMIM; PySlowFast's
name, which with MASK.MAE_ON builds "MAE") and "MAE" (sparse encoder + decoder: MAE,
VideoMAE; VideoMAE V2 with a decoder mask). Methods differ by the parts the config picks
(mask, target, loss).

A model is a composition of several parts, none of which reads the config, so the
MODEL registry's entries are builder functions rather than classes with `from_config`.
"""

import logging
from typing import Any, Dict

from fvcore.common.config import CfgNode
from torch import nn

# The package, not its function: tests stand in for `targets.build_target`.
from slowmask import targets
from slowmask.geometry import TokenGeometry
from slowmask.masking import build_decoder_mask_generator
from slowmask.utils.registry import Registry

from . import mvit
from .layers.attention import attention_path
from .layers.block import BlockOptions
from .decoder_head import DecoderPredictionHead
from .dual_mask import DualMaskPretrainer
from .layers.layout import mvit_layout
from .losses import build_loss
from .mae import MAEEncoder
from .pretrainer import MaskedPretrainer

logger = logging.getLogger(__name__)

PYSLOWFAST_HOG_PREFIX = "hogs."

MODEL_REGISTRY = Registry("MODEL", "model")
MODEL_REGISTRY.__doc__ = """Models, by the name MODEL.MODEL_NAME gives.

Every entry is a builder function called as `builder(cfg)` that returns an nn.Module:
a pretraining model called as `model(x, mask)` returning {"pred", "target", "loss"},
or a classifier called as `model(x)` returning logits.
"""


def build_model(cfg: CfgNode) -> nn.Module:
    """The model MODEL.MODEL_NAME names, built by its registered builder (on the CPU,
    or on the current default device, e.g. inside `with torch.device("meta")`)."""
    name = cfg.MODEL.MODEL_NAME
    model = MODEL_REGISTRY.get(name, "MODEL.MODEL_NAME")(cfg)
    logger.info("built %s with %d parameters", name, sum(p.numel() for p in model.parameters()))
    return model


def _check_supported(cfg: CfgNode) -> None:
    if cfg.MVIT.NORM != "layernorm":
        raise ValueError(f'MVIT.NORM {cfg.MVIT.NORM!r} is not supported; use "layernorm"')
    if cfg.MVIT.REV.ENABLE:
        raise ValueError("MVIT.REV.ENABLE: reversible MViT is not supported; set it to False")


def trunk_args(cfg: CfgNode) -> Dict[str, Any]:
    """MViTTrunk's arguments (layout included) from the MVIT.*, DATA.* and MODEL.* keys."""
    _check_supported(cfg)
    geometry = TokenGeometry.from_config(cfg)
    mv = cfg.MVIT
    layout = mvit_layout(
        embed_dim=mv.EMBED_DIM,
        num_heads=mv.NUM_HEADS,
        depth=mv.DEPTH,
        input_grid=geometry.token_grid,
        dim_mul=mv.DIM_MUL,
        head_mul=mv.HEAD_MUL,
        pool_q_stride=mv.POOL_Q_STRIDE,
        pool_kv_stride=mv.POOL_KV_STRIDE,
        pool_kv_stride_adaptive=mv.POOL_KV_STRIDE_ADAPTIVE,
        pool_kvq_kernel=mv.POOL_KVQ_KERNEL,
        drop_path_rate=mv.DROPPATH_RATE,
        dim_mul_in_att=mv.DIM_MUL_IN_ATT,
    )
    use_sdpa, pad_to_fused = attention_path(mv.ATTENTION)
    options = BlockOptions(
        mlp_ratio=mv.MLP_RATIO,
        qkv_bias=mv.QKV_BIAS,
        drop_rate=mv.DROPOUT_RATE,
        layer_scale_init_value=mv.LAYER_SCALE_INIT_VALUE,
        mode=mv.MODE,
        pool_first=mv.POOL_FIRST,
        rel_pos_spatial=mv.REL_POS_SPATIAL,
        rel_pos_temporal=mv.REL_POS_TEMPORAL,
        rel_pos_zero_init=mv.REL_POS_ZERO_INIT,
        residual_pooling=mv.RESIDUAL_POOLING,
        dim_mul_in_att=mv.DIM_MUL_IN_ATT,
        separate_qkv=mv.SEPARATE_QKV,
        use_sdpa=use_sdpa,
        pad_to_fused=pad_to_fused,
    )
    return dict(
        layout=layout,
        options=options,
        input_size=geometry.input_size,
        patch_kernel=tuple(mv.PATCH_KERNEL),
        patch_stride=tuple(mv.PATCH_STRIDE),
        patch_padding=tuple(mv.PATCH_PADDING),
        patch_2d=mv.PATCH_2D,
        in_chans=cfg.DATA.INPUT_CHANNEL_NUM[0],
        cls_embed_on=mv.CLS_EMBED_ON,
        use_abs_pos=mv.USE_ABS_POS,
        sep_pos_embed=mv.SEP_POS_EMBED,
        fixed_sincos_pos=mv.USE_FIXED_SINCOS_POS,
        norm_stem=mv.NORM_STEM,
        act_checkpoint=cfg.MODEL.ACT_CHECKPOINT,
    )


@MODEL_REGISTRY.register(name="MViT")
def build_classifier(cfg: CfgNode) -> nn.Module:
    """MViTv2 / ViT classifier: model(x (B, 3, T, H, W)) -> (B, MODEL.NUM_CLASSES) logits."""
    return mvit.MViT(
        num_classes=cfg.MODEL.NUM_CLASSES,
        head_dropout=cfg.MODEL.DROPOUT_RATE,
        use_mean_pooling=cfg.MVIT.USE_MEAN_POOLING,
        head_init_scale=cfg.MVIT.HEAD_INIT_SCALE,
        detach_final_fc=cfg.MODEL.DETACH_FINAL_FC,
        linear_probe=cfg.MODEL.LINEAR_PROBE,
        **trunk_args(cfg),
    )


@MODEL_REGISTRY.register(name="MaskMViT")
def build_maskfeat(cfg: CfgNode) -> nn.Module:
    """MaskFeat: dense MViT encoder with mask token + separate linear head + target
    (MASK.TARGET / PRED_HOG) + MODEL.LOSS_FUNC; model(x, mask) -> {"pred", "target", "loss"}."""
    if cfg.MASK.MAE_ON:
        # PySlowFast's MaskMViT with MASK.MAE_ON is MAE: the flag picks the composition.
        return build_mae(cfg)
    if cfg.MASK.HEAD_TYPE != "separate":
        raise ValueError(f'MASK.HEAD_TYPE {cfg.MASK.HEAD_TYPE!r} is not supported; use "separate"')
    encoder = mvit.MaskFeatEncoder(pretrain_depth=cfg.MASK.PRETRAIN_DEPTH, **trunk_args(cfg))
    target = targets.build_target(cfg)
    # The target knows its width for a token's pixels (HOG: 3 * 9 * (ph/8) * (pw/8)).
    dims_out = [target.dim(TokenGeometry.from_config(cfg).stride_at(depth)) for depth in encoder.pretrain_depth]
    head = mvit.SeparatePredictionHead(encoder.out_dims, dims_out)
    model = MaskedPretrainer(encoder, head, target, build_loss(cfg.MODEL.LOSS_FUNC), cfg.MASK.LOSS_TOKENS)
    model.register_load_state_dict_pre_hook(_drop_pyslowfast_hog_filters)
    return model


@MODEL_REGISTRY.register(name="MAE")
def build_mae(cfg: CfgNode) -> nn.Module:
    """MAE / VideoMAE: sparse ViT encoder (visible tokens only) + transformer decoder
    (MASK.DECODER_DEPTH / DECODER_EMBED_DIM / DECODER_SEP_POS_EMBED) + target (MASK.TARGET,
    pixels by default) + MODEL.LOSS_FUNC; model(x, mask) -> {"pred", "target", "loss"}.
    With MASK.DECODER_MASK_TYPE set, VideoMAE V2: the decoder runs on part of the tokens."""
    _check_mae_supported(cfg)
    args = trunk_args(cfg)
    depth = cfg.MASK.PRETRAIN_DEPTH[0]
    args["layout"] = args["layout"][: depth + 1]
    encoder = MAEEncoder(
        decoder_dim=cfg.MASK.DECODER_EMBED_DIM, decoder_sep_pos_embed=cfg.MASK.DECODER_SEP_POS_EMBED, **args
    )
    target = targets.build_target(cfg)
    head = DecoderPredictionHead(
        cfg.MASK.DECODER_EMBED_DIM,
        target.dim(TokenGeometry.from_config(cfg).stride_at(depth)),
        depth=cfg.MASK.DECODER_DEPTH,
        dim=cfg.MASK.DECODER_EMBED_DIM,
        has_cls_embed=cfg.MVIT.CLS_EMBED_ON,
        options=BlockOptions(mlp_ratio=cfg.MVIT.MLP_RATIO, qkv_bias=cfg.MVIT.QKV_BIAS, drop_rate=cfg.MVIT.DROPOUT_RATE),
    )
    decoder_mask = build_decoder_mask_generator(cfg, encoder.patch_grid)
    if decoder_mask is not None:
        # VideoMAE V2's dual masking: the decoder runs on the visible and the kept masked tokens.
        if cfg.MASK.LOSS_TOKENS != "masked":
            raise ValueError(
                f"MASK.DECODER_MASK_TYPE {cfg.MASK.DECODER_MASK_TYPE!r} takes the loss on the masked tokens the "
                f'decoder keeps: set MASK.LOSS_TOKENS "masked" (got {cfg.MASK.LOSS_TOKENS!r})'
            )
        return DualMaskPretrainer(encoder, head, target, build_loss(cfg.MODEL.LOSS_FUNC), decoder_mask)
    return MaskedPretrainer(encoder, head, target, build_loss(cfg.MODEL.LOSS_FUNC), cfg.MASK.LOSS_TOKENS)


def _check_mae_supported(cfg: CfgNode) -> None:
    """The MAE keys this builder does not build fail here, naming the key."""
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


def _drop_pyslowfast_hog_filters(module: nn.Module, state_dict: Dict[str, Any], prefix: str, *_: Any) -> None:
    """PySlowFast's MaskMViT saved its fixed HOG gradient filters as buffers
    (`hogs.0.weight_x`, `hogs.0.weight_y`); slowmask's target owns them, so they are
    dropped when such a checkpoint is loaded."""
    for key in [k for k in state_dict if k.startswith(prefix + PYSLOWFAST_HOG_PREFIX)]:
        del state_dict[key]
