"""Architectures from the configuration: the MODEL registry and `trunk_args`, the MVIT.*
keys as MViTTrunk's arguments. The builders here are the only code of slowmask.models
that reads `cfg`; every module takes plain arguments.

Registered (MODEL.MODEL_NAME): "MViT", the classifier (ViT is MViT without pooling). The
pretraining methods (MaskFeat, MAE, ...) are compositions of these architectures and live
in slowmask.methods, whose `build_model` builds either kind.
"""

from typing import Any, Dict

from fvcore.common.config import CfgNode

from slowmask.geometry import TokenGeometry
from slowmask.utils.registry import Registry

from . import mvit
from .layers.attention import attention_path
from .layers.block import BlockOptions
from .layers.layout import mvit_layout

MODEL_REGISTRY = Registry("MODEL", "model")
MODEL_REGISTRY.__doc__ = """Architectures, by the name MODEL.MODEL_NAME gives (a name the
METHOD registry does not hold; see slowmask.methods.build_model).

Every entry has `from_config(cfg)` -> nn.Module, built as `MODEL_REGISTRY.build(name,
cfg)` (no context): a classifier called as `model(x (B, 3, T, H, W))` returning
(B, num_classes) logits.
"""


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
        use_rope=mv.USE_ROPE,
        rope_exact=mv.ROPE_EXACT,
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
        sincos_layout=mv.SINCOS_LAYOUT,
        norm_stem=mv.NORM_STEM,
        act_checkpoint=cfg.MODEL.ACT_CHECKPOINT,
    )


@MODEL_REGISTRY.register(name="MViT")
class Classifier:
    """The "MViT" entry: the MViTv2 / ViT classifier, model(x (B, 3, T, H, W)) ->
    (B, MODEL.NUM_CLASSES) logits."""

    @staticmethod
    def from_config(cfg: CfgNode) -> mvit.MViT:
        return mvit.MViT(
            num_classes=cfg.MODEL.NUM_CLASSES,
            head_dropout=cfg.MODEL.DROPOUT_RATE,
            use_mean_pooling=cfg.MVIT.USE_MEAN_POOLING,
            head_init_scale=cfg.MVIT.HEAD_INIT_SCALE,
            detach_final_fc=cfg.MODEL.DETACH_FINAL_FC,
            linear_probe=cfg.MODEL.LINEAR_PROBE,
            **trunk_args(cfg),
        )
