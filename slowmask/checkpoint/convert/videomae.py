"""Official VideoMAE (MCG-NJU/VideoMAE) and VideoMAE V2 (OpenGVLab/VideoMAEv2) `.pth`
files, pretraining and fine-tuned, as their training scripts save them ({"model": state}
or {"module": state}).

Their ViT: `patch_embed.proj` (Conv3d, tubelet x patch x patch), `blocks.N.attn.qkv`
without a bias and `attn.q_bias` / `attn.v_bias` (no key bias), optional layer scale
`gamma_1` / `gamma_2`, no class token, and a fixed 1-D sine table over the flattened grid
that the file does not store (it is a plain tensor, not a parameter). Pretraining files
prefix the encoder with `encoder.` and add `encoder_to_decoder`, `mask_token` and
`decoder.*`; the encoder ends with `encoder.norm` on every token. Fine-tuned files end with
`fc_norm` on the mean of the tokens and `head`.

The converted model is slowmask's ViT with no class token, VideoMAE's table in a frozen
`pos_embed` (USE_FIXED_SINCOS_POS) and mean pooling; `norm` is `encoder.norm` or
`fc_norm`. The decoder is not converted (reported unused).
"""

from typing import Any, Dict, List, Set, Tuple

from torch import Tensor

from .formats import CheckpointFormat, ConversionError, Source, register_format
from .vit import StateTaker, grid_of, heads_for, qkv_bias_of, videomae_sine_table, vit_config

# The clips the published models were trained on, for a file that does not say.
DEFAULT_FRAMES, DEFAULT_CROP = 16, 224
ENCODER = "encoder."


def _looks_like_videomae(source: Source) -> bool:
    state = source.state
    prefix = ENCODER if f"{ENCODER}patch_embed.proj.weight" in state else ""
    weight = state.get(f"{prefix}patch_embed.proj.weight")
    return (
        not source.is_directory
        and weight is not None
        and weight.ndim == 5
        and f"{prefix}blocks.0.attn.qkv.weight" in state
        and f"{prefix}blocks.0.attn.proj.weight" in state
    )


def _blocks(take: StateTaker, prefix: str) -> Tuple[int, bool]:
    """Move every block; returns (depth, whether the blocks have layer scale)."""
    indices = take.block_indices(f"{prefix}blocks.")
    layer_scale = take.has(f"{prefix}blocks.0.gamma_1")
    for index in indices:
        source, target = f"{prefix}blocks.{index}.", f"blocks.{index}."
        for name in ("norm1", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2"):
            take.move(source + name, target + name)
        take.state[target + "attn.qkv.weight"] = take.take(source + "attn.qkv.weight")
        bias = _qkv_bias(take, source + "attn.")
        if bias is not None:
            take.state[target + "attn.qkv.bias"] = bias
        if layer_scale:
            take.state[target + "gamma_1"] = take.take(source + "gamma_1")
            take.state[target + "gamma_2"] = take.take(source + "gamma_2")
    if take.has(f"{prefix}blocks.0.attn.logit_scale"):
        raise ConversionError("its attention is cosine attention (attn.logit_scale), which slowmask's ViT does not have")
    return len(indices), layer_scale


def _qkv_bias(take: StateTaker, attn: str):
    if take.has(attn + "qkv.bias"):
        return take.take(attn + "qkv.bias")
    if take.has(attn + "q_bias") != take.has(attn + "v_bias"):
        raise ConversionError(f"it has only one of {attn}q_bias and {attn}v_bias")
    if not take.has(attn + "q_bias"):
        return None
    return qkv_bias_of(take.take(attn + "q_bias"), None, take.take(attn + "v_bias"))


def videomae_mapping(state: Dict[str, Tensor], config: Dict[str, Any]) -> Tuple[Dict[str, Tensor], Dict[str, Any], Set[str]]:
    """An official VideoMAE / VideoMAE V2 state -> slowmask's ViT (common.md's contract).
    `config` may give num_frames, image_size (default 16 x 224, the published clips) and
    num_heads (default: the published ViT's of that width)."""
    notes: List[str] = []
    take = StateTaker(state)
    prefix = ENCODER if take.has(f"{ENCODER}patch_embed.proj.weight") else ""
    take.move(f"{prefix}patch_embed.proj", "patch_embed.proj")
    dim, channels, *patch = take.state["patch_embed.proj.weight"].shape
    depth, layer_scale = _blocks(take, prefix)
    frames = int(config.get("num_frames") or DEFAULT_FRAMES)
    crop = int(config.get("image_size") or DEFAULT_CROP)
    grid = grid_of(frames, crop, tuple(patch))
    qkv_bias = "blocks.0.attn.qkv.bias" in take.state
    if qkv_bias and take.has(f"{prefix}blocks.0.attn.q_bias"):
        notes.append("attention: qkv bias = [q_bias, 0, v_bias]; the zero key bias is exact (the softmax cancels it)")
    learned = take.has(f"{prefix}pos_embed")
    if learned:
        take.state["pos_embed"] = take.take(f"{prefix}pos_embed")
    else:
        take.state["pos_embed"] = videomae_sine_table(grid[0] * grid[1] * grid[2], dim)
        notes.append(f"pos_embed: VideoMAE's fixed 1-D sine table over the {grid} grid of {frames} x {crop}^2 clips, "
                     "computed (the file does not store it)")
    _head(take, prefix, notes)
    out = vit_config(
        dim, heads_for(dim, config, notes), depth, take.state["blocks.0.mlp.fc1.weight"].shape[0], tuple(patch),
        frames, crop, channels, CLS_EMBED_ON=False, SEP_POS_EMBED=False, USE_FIXED_SINCOS_POS=not learned,
        USE_MEAN_POOLING=True, QKV_BIAS=qkv_bias, LAYER_SCALE_INIT_VALUE=0.1 if layer_scale else 0.0,
    )
    if "head.projection.weight" in take.state:
        out["MODEL.NUM_CLASSES"] = int(take.state["head.projection.weight"].shape[0])
    out["_notes"] = notes
    return take.state, out, take.used


def _head(take: StateTaker, prefix: str, notes: List[str]) -> None:
    """Move the final norm and the classifier (the model mean-pools, as VideoMAE's)."""
    if take.has("fc_norm.weight"):
        take.move("fc_norm", "norm")
    elif take.has(f"{prefix}norm.weight"):
        if take.has("head.weight"):
            raise ConversionError("it classifies its first token (norm, no fc_norm, no class token), "
                                  "a pooling slowmask's ViT does not have")
        take.move(f"{prefix}norm", "norm")
        notes.append("norm: the encoder's last norm; a fine-tuned model applies it to the mean of the tokens")
    if take.has("head.weight"):
        take.move("head", "head.projection")


register_format(CheckpointFormat(
    name="videomae",
    reads="an official VideoMAE / VideoMAE V2 .pth (pretraining or fine-tuned)",
    detect=_looks_like_videomae,
    mapping=videomae_mapping,
))
