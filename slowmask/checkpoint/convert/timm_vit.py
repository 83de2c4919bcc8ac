"""timm's image ViTs (`vision_transformer.py`; MAE's `vit_base_patch16_224.mae` layout),
inflated to video.

timm names: `cls_token`, `pos_embed` (1, 1 + h*w, D), `patch_embed.proj` (a Conv2d),
`blocks.N.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}` (and `ls1.gamma` /
`ls2.gamma` with layer scale), `norm` or, for average pooling, `fc_norm`, `head`.

Inflation, as PySlowFast inflates a 2-D kernel (its checkpoint.py `inflate_weight`): the
patch kernel repeated over the `tubelet` frames of a video patch and divided by their
number, so a still clip embeds as the image did. The image's position table becomes the
spatial table of separate tables (MVIT.SEP_POS_EMBED), the class token's entry the class
table, and the temporal table is zero: on a clip of one token slice the inflated model
gives the image model's outputs.
"""

import math
from typing import Any, Dict, List, Set, Tuple

import torch
from torch import Tensor

from .formats import CheckpointFormat, ConversionError, Source, register_format
from .vit import StateTaker, heads_for, vit_config

# Frames per video patch and frames per clip of the inflated model, unless told.
DEFAULT_TUBELET, DEFAULT_FRAMES = 2, 16
BLOCK_NAMES = ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2")
TIMM_CONFIG_KEY = "architecture"
UNSUPPORTED = {"reg_token": "register tokens", "blocks.0.attn.q_norm.weight": "query-key normalization"}


def _looks_like_timm_vit(source: Source) -> bool:
    """A file of timm's names, or a Hugging Face hub folder of timm (its config.json names
    an `architecture`, timm's key, where transformers has `model_type`)."""
    weight = source.state.get("patch_embed.proj.weight")
    return (
        (not source.is_directory or TIMM_CONFIG_KEY in source.config)
        and source.container != "model_state"
        and weight is not None
        and weight.ndim == 4
        and "blocks.0.attn.qkv.weight" in source.state
    )


def timm_vit_mapping(state: Dict[str, Tensor], config: Dict[str, Any]) -> Tuple[Dict[str, Tensor], Dict[str, Any], Set[str]]:
    """A timm image ViT state -> slowmask's video ViT (common.md's contract); `config` may
    give tubelet (frames per patch, default 2), num_frames (default 16), num_heads."""
    for key, what in UNSUPPORTED.items():
        if key in state:
            raise ConversionError(f"it has {what} ({key}), which slowmask's ViT does not have")
    take, notes = StateTaker(state), []
    tubelet, frames = int(config.get("tubelet") or DEFAULT_TUBELET), int(config.get("num_frames") or DEFAULT_FRAMES)
    kernel = take.take("patch_embed.proj.weight")
    take.state["patch_embed.proj.weight"] = kernel.unsqueeze(2).repeat(1, 1, tubelet, 1, 1) / tubelet
    take.state["patch_embed.proj.bias"] = take.take("patch_embed.proj.bias")
    notes.append(f"patch_embed.proj: the 2-D kernel repeated over {tubelet} frames and divided by {tubelet} "
                 "(PySlowFast's inflation)")
    dim, channels, patch_h, patch_w = kernel.shape
    has_cls = take.has("cls_token")
    side = _positions(take, dim, has_cls, frames // tubelet, notes)
    depth, layer_scale = _blocks(take)
    mean_pooling = take.has("fc_norm.weight")
    take.move("fc_norm" if mean_pooling else "norm", "norm")
    if take.has("head.weight"):
        take.move("head", "head.projection")
    out = vit_config(
        dim, heads_for(dim, config, notes), depth, take.state["blocks.0.mlp.fc1.weight"].shape[0],
        (tubelet, patch_h, patch_w), frames, side * patch_h, channels, CLS_EMBED_ON=has_cls, SEP_POS_EMBED=True,
        USE_FIXED_SINCOS_POS=False, USE_MEAN_POOLING=mean_pooling, QKV_BIAS="blocks.0.attn.qkv.bias" in take.state,
        LAYER_SCALE_INIT_VALUE=0.1 if layer_scale else 0.0,
    )
    if "head.projection.weight" in take.state:
        out["MODEL.NUM_CLASSES"] = int(take.state["head.projection.weight"].shape[0])
    out["_notes"] = notes
    return take.state, out, take.used


def _positions(take: StateTaker, dim: int, has_cls: bool, time_tokens: int, notes: List[str]) -> int:
    """Move the class token and the position table as separate tables; returns the side
    of the square token grid."""
    table = take.take("pos_embed")
    prefix = 1 if has_cls and table.shape[1] != int(math.isqrt(table.shape[1])) ** 2 else 0
    side = math.isqrt(table.shape[1] - prefix)
    if side * side != table.shape[1] - prefix:
        raise ConversionError(f"its position table of {table.shape[1]} entries is not a square grid")
    if has_cls:
        take.state["cls_token"] = take.take("cls_token")
        take.state["pos_embed_class"] = table[:, :1] if prefix else torch.zeros(1, 1, dim)
    take.state["pos_embed_spatial"] = table[:, prefix:]
    take.state["pos_embed_temporal"] = torch.zeros(1, time_tokens, dim)
    notes.append("pos_embed_spatial: the image's table; pos_embed_temporal: zero (an image has no time)"
                 + ("" if prefix or not has_cls else "; pos_embed_class: zero (the class token had no position)"))
    return side


def _blocks(take: StateTaker) -> Tuple[int, bool]:
    indices = take.block_indices("blocks.")
    layer_scale = take.has("blocks.0.ls1.gamma")
    for index in indices:
        source = target = f"blocks.{index}."
        for name in BLOCK_NAMES:
            take.move(source + name, target + name)
        if layer_scale:
            take.state[target + "gamma_1"] = take.take(source + "ls1.gamma")
            take.state[target + "gamma_2"] = take.take(source + "ls2.gamma")
    return len(indices), layer_scale


register_format(CheckpointFormat(
    name="timm_vit",
    reads="a timm image ViT, a file or a hub folder (e.g. vit_base_patch16_224.mae), inflated to video",
    detect=_looks_like_timm_vit,
    mapping=timm_vit_mapping,
))
