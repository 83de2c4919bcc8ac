"""Hugging Face VideoMAE directories (config.json + safetensors), in and out:
`VideoMAEModel`, `VideoMAEForPreTraining` and `VideoMAEForVideoClassification`.

transformers names a layer `encoder.layer.N.{attention.attention.{query,key,value},
attention.output.dense, layernorm_before, layernorm_after, intermediate.dense,
output.dense}`, the patch embedding `embeddings.patch_embeddings.projection`, and keeps
the fixed 1-D sine table out of the weights (VideoMAE's, see vit.py). The key has no
bias. The query and value biases come in two layouts: `attention.attention.q_bias` /
`v_bias` (the published MCG-NJU directories; transformers 4 wrote them, and transformers
5's save_pretrained still does) and `attention.attention.query.bias` / `value.bias`
(transformers 5's module names, which it renames the old names to when it loads them, so
a state dict saved as it is holds these). Both are read; a directory whose config asks
for the biases and holds neither is refused, never loaded with zeros.
"""

import json
import os
import shutil
from typing import Any, Dict, List, Optional, Set, Tuple

import torch
from torch import Tensor, nn

from ..files import unwrapped
from .formats import CheckpointFormat, ConversionError, Source, model_hints, register_format
from .vit import LAYER_NORM_EPS, StateTaker, grid_of, qkv_bias_of, videomae_sine_table, vit_config

BASE_PREFIX = "videomae."
LAYERS = "encoder.layer."
ATTENTION = "attention.attention."
# Per layer: transformers' name -> slowmask's.
LAYER_NAMES = {
    "attention.output.dense": "attn.proj",
    "layernorm_before": "norm1",
    "layernorm_after": "norm2",
    "intermediate.dense": "mlp.fc1",
    "output.dense": "mlp.fc2",
}
# transformers' VideoMAEForVideoClassification normalizes the pooled tokens with
# nn.LayerNorm's default epsilon, not config.layer_norm_eps.
FC_NORM_EPS = 1e-5
CLASSIFIER = "VideoMAEForVideoClassification"
ENCODER = "VideoMAEModel"


def _is_hf_videomae(source: Source) -> bool:
    return source.is_directory and source.config.get("model_type") == "videomae"


def _pair(value: Any) -> int:
    """A square size from transformers' int or [h, w]."""
    if isinstance(value, (list, tuple)):
        if len(set(value)) != 1:
            raise ConversionError(f"its size {list(value)} is not square, as slowmask's patches and crops are")
        return int(value[0])
    return int(value)


def _attention_bias(take: StateTaker, attn: str, wants_bias: bool) -> Optional[Tensor]:
    """The (3D,) qkv bias from either layout; refuses a missing or doubled one."""
    new = [take.has(attn + name) for name in ("query.bias", "value.bias")]
    old = [take.has(attn + name) for name in ("q_bias", "v_bias")]
    if any(new) and any(old):
        raise ConversionError(f"it holds both {attn}query.bias and {attn}q_bias: two layouts mixed")
    if not any(new + old):
        if wants_bias:
            raise ConversionError(
                f"its config.json sets qv_bias but it holds neither {attn}q_bias / v_bias (transformers 4) nor "
                f"{attn}query.bias / value.bias (transformers 5): the biases would load as zeros"
            )
        return None
    names = ("query.bias", "value.bias") if any(new) else ("q_bias", "v_bias")
    query, value = take.take(attn + names[0]), take.take(attn + names[1])
    return qkv_bias_of(query, take.maybe(attn + "key.bias"), value)


def hf_videomae_mapping(
    state: Dict[str, Tensor], config: Dict[str, Any]
) -> Tuple[Dict[str, Tensor], Dict[str, Any], Set[str]]:
    """A transformers VideoMAE state and its config.json -> slowmask's ViT (common.md's contract)."""
    if config.get("hidden_act", "gelu") != "gelu":
        raise ConversionError(f"its activation {config['hidden_act']!r} is not GELU, slowmask's ViT's")
    take, notes, warnings = StateTaker(state), [], []
    base = BASE_PREFIX if any(key.startswith(BASE_PREFIX) for key in state) else ""
    take.move(f"{base}embeddings.patch_embeddings.projection", "patch_embed.proj")
    wants_bias = bool(config.get("qv_bias", config.get("qkv_bias", True)))
    layers = take.block_indices(f"{base}{LAYERS}")
    layouts = set()
    for index in layers:
        source, target = f"{base}{LAYERS}{index}.", f"blocks.{index}."
        attn = source + ATTENTION
        take.state[target + "attn.qkv.weight"] = torch.cat(
            [take.take(f"{attn}{name}.weight") for name in ("query", "key", "value")]
        )
        layouts.add("q_bias / v_bias" if take.has(attn + "q_bias") else "query.bias / value.bias")
        bias = _attention_bias(take, attn, wants_bias)
        if bias is not None:
            take.state[target + "attn.qkv.bias"] = bias
        for name, ours in LAYER_NAMES.items():
            take.move(source + name, target + ours)
    notes.append(f"attention biases: {', '.join(sorted(layouts))}; the key bias is zero, as in transformers")
    classifier = _head(take, base, config, warnings)
    eps = float(config.get("layer_norm_eps", 1e-12))
    if eps != LAYER_NORM_EPS:
        warnings.append(f"its LayerNorms use eps {eps:g}, slowmask's {LAYER_NORM_EPS:g}: outputs differ slightly "
                        "(by about the epsilons' difference over the features' variance)")
    patch = (int(config.get("tubelet_size", 2)), _pair(config.get("patch_size", 16)), _pair(config.get("patch_size", 16)))
    frames, crop = int(config.get("num_frames", 16)), _pair(config.get("image_size", 224))
    grid = grid_of(frames, crop, patch)
    dim = int(config.get("hidden_size", take.state["patch_embed.proj.weight"].shape[0]))
    take.state["pos_embed"] = videomae_sine_table(grid[0] * grid[1] * grid[2], dim)
    notes.append(f"pos_embed: VideoMAE's fixed 1-D sine table over the {grid} grid, computed as transformers does")
    out = vit_config(
        dim, int(config.get("num_attention_heads", 12)), len(layers), take.state["blocks.0.mlp.fc1.weight"].shape[0],
        patch, frames, crop, int(config.get("num_channels", 3)), CLS_EMBED_ON=False, SEP_POS_EMBED=False,
        USE_FIXED_SINCOS_POS=True, USE_MEAN_POOLING=True, QKV_BIAS=wants_bias, LAYER_SCALE_INIT_VALUE=0.0,
    )
    if classifier:
        out["MODEL.NUM_CLASSES"] = int(take.state["head.projection.weight"].shape[0])
    out["_notes"], out["_warnings"] = notes, warnings
    return take.state, out, take.used


def _head(take: StateTaker, base: str, config: Dict[str, Any], warnings: List[str]) -> bool:
    """Move the final norm and the classifier; returns whether there is a classifier."""
    if take.has("fc_norm.weight"):
        take.move("fc_norm", "norm")
        warnings.append(f"transformers' fc_norm uses eps {FC_NORM_EPS:g} (VideoMAE's own and slowmask's "
                        f"{LAYER_NORM_EPS:g}): its logits differ slightly")
    elif take.has(f"{base}layernorm.weight"):
        if take.has("classifier.weight"):
            raise ConversionError("it classifies its first token (use_mean_pooling false, no class token), "
                                  "a pooling slowmask's ViT does not have")
        take.move(f"{base}layernorm", "norm")
    if take.has("classifier.weight"):
        take.move("classifier", "head.projection")
        return True
    return False


register_format(CheckpointFormat(
    name="hf_videomae",
    reads="a Hugging Face VideoMAE directory (VideoMAEModel, VideoMAEForPreTraining, VideoMAEForVideoClassification)",
    detect=_is_hf_videomae,
    mapping=hf_videomae_mapping,
))


# Out: a slowmask ViT as a transformers VideoMAE directory.

def hf_videomae_state(state: Dict[str, Tensor], geometry: Dict[str, Any]) -> Tuple[Dict[str, Tensor], Dict[str, Any]]:
    """slowmask ViT state -> (transformers state, config.json dict): a classifier (with
    `head.projection`) as VideoMAEForVideoClassification, an encoder as VideoMAEModel.
    `geometry`: num_frames, image_size, tubelet_size, patch_size, num_heads, num_channels,
    and for a classifier class_names (or None).

    Raises:
        ConversionError: the model has what transformers' VideoMAE cannot hold (a class
            token, other position tables, layer scale, a head without mean pooling).
    """
    _check_exportable(state, geometry)
    prefix = BASE_PREFIX if "head.projection.weight" in state else ""
    out = {f"{prefix}embeddings.patch_embeddings.projection.{leaf}": state[f"patch_embed.proj.{leaf}"]
           for leaf in ("weight", "bias")}
    depth = len({key.split(".")[1] for key in state if key.startswith("blocks.")})
    for index in range(depth):
        out.update(_layer_out(state, index, f"{prefix}{LAYERS}{index}."))
    if prefix:
        out.update({"fc_norm.weight": state["norm.weight"], "fc_norm.bias": state["norm.bias"],
                    "classifier.weight": state["head.projection.weight"],
                    "classifier.bias": state["head.projection.bias"]})
    else:
        out.update({"layernorm.weight": state["norm.weight"], "layernorm.bias": state["norm.bias"]})
    dim = state["patch_embed.proj.weight"].shape[0]
    config = {
        "model_type": "videomae",
        "architectures": [CLASSIFIER if prefix else ENCODER],
        "hidden_size": int(dim),
        "num_hidden_layers": depth,
        "num_attention_heads": int(geometry["num_heads"]),
        "intermediate_size": int(state["blocks.0.mlp.fc1.weight"].shape[0]),
        "hidden_act": "gelu",
        "layer_norm_eps": LAYER_NORM_EPS,
        "qv_bias": "blocks.0.attn.qkv.bias" in state,
        "use_mean_pooling": bool(prefix),
        **{key: int(geometry[key]) for key in ("image_size", "patch_size", "num_channels", "num_frames", "tubelet_size")},
    }
    if prefix:
        names = geometry.get("class_names") or [f"LABEL_{i}" for i in range(state["head.projection.weight"].shape[0])]
        config["id2label"] = {str(i): name for i, name in enumerate(names)}
        config["label2id"] = {name: i for i, name in enumerate(names)}
    return {key: value.contiguous() for key, value in out.items()}, config


def _layer_out(state: Dict[str, Tensor], index: int, target: str) -> Dict[str, Tensor]:
    source = f"blocks.{index}."
    out = {}
    for name, index_part in zip(("query", "key", "value"), state[source + "attn.qkv.weight"].chunk(3)):
        out[f"{target}{ATTENTION}{name}.weight"] = index_part
    if source + "attn.qkv.bias" in state:
        # The published names, which transformers 4 and 5 both load; the key bias is left out:
        # it adds the same amount to every logit of a query, which the softmax cancels.
        query, _, value = state[source + "attn.qkv.bias"].chunk(3)
        out[f"{target}{ATTENTION}q_bias"], out[f"{target}{ATTENTION}v_bias"] = query, value
    for theirs, ours in LAYER_NAMES.items():
        out[f"{target}{theirs}.weight"] = state[f"{source}{ours}.weight"]
        out[f"{target}{theirs}.bias"] = state[f"{source}{ours}.bias"]
    return out


def _check_exportable(state: Dict[str, Tensor], geometry: Dict[str, Any]) -> None:
    if any(".attn.pool_" in key or ".attn.rel_pos" in key for key in state):
        raise ConversionError("it is an MViT (pooling attention or relative positions), which transformers has no "
                              "class for")
    reasons = []
    patch = (int(geometry["tubelet_size"]), int(geometry["patch_size"]), int(geometry["patch_size"]))
    if tuple(state["patch_embed.proj.weight"].shape[2:]) != patch:
        reasons.append(f"its patch kernel {list(state['patch_embed.proj.weight'].shape[2:])} is not its stride "
                       f"{list(patch)} (overlapping patches)")
    if "cls_token" in state:
        reasons.append("it has a class token (MVIT.CLS_EMBED_ON True)")
    if "pos_embed" not in state:
        reasons.append("it has no single position table (MVIT.SEP_POS_EMBED or no absolute positions)")
    else:
        grid = grid_of(int(geometry["num_frames"]), int(geometry["image_size"]), patch)
        table = videomae_sine_table(grid[0] * grid[1] * grid[2], state["pos_embed"].shape[-1])
        if state["pos_embed"].shape != table.shape or not torch.allclose(state["pos_embed"].float(), table, atol=1e-6):
            reasons.append("its position table is not VideoMAE's fixed 1-D sine table, the one transformers computes "
                           "(slowmask's own USE_FIXED_SINCOS_POS table is 3-D)")
    if any(key.endswith("gamma_1") for key in state):
        reasons.append("it has layer scale (MVIT.LAYER_SCALE_INIT_VALUE > 0)")
    if any(key.startswith("head.bn.") for key in state):
        reasons.append("its head normalizes the features with a BatchNorm (MODEL.LINEAR_PROBE)")
    if "head.projection.weight" in state and not geometry.get("mean_pooling"):
        reasons.append("its classifier does not mean-pool the tokens (MVIT.USE_MEAN_POOLING False)")
    if reasons:
        raise ConversionError("transformers' VideoMAE cannot hold this model: " + "; ".join(reasons))


def write_hf_directory(path: str, state: Dict[str, Tensor], config: Dict[str, Any]) -> None:
    """Write config.json and model.safetensors into the new folder `path`, through a
    temporary folder renamed into place: a failure leaves nothing."""
    from safetensors.torch import save_file  # an optional package, needed only here

    temporary = f"{path.rstrip(os.sep)}.tmp-{os.getpid()}"
    try:
        os.makedirs(temporary)
        with open(os.path.join(temporary, "config.json"), "w") as f:
            json.dump(config, f, indent=2, sort_keys=True)
        save_file(state, os.path.join(temporary, "model.safetensors"), metadata={"format": "pt"})
        os.replace(temporary, path)
    finally:
        if os.path.isdir(temporary):
            shutil.rmtree(temporary)


# The tensors of a pretraining model that make its encoder (MAE / VideoMAE keep them flat).
ENCODER_PREFIXES = ("patch_embed.", "blocks.", "norm.", "pos_embed", "cls_token")


def export_hf_directory(model: nn.Module, path: str, class_names: Optional[List[str]] = None) -> List[str]:
    """Write `model`, a slowmask ViT classifier (as VideoMAEForVideoClassification) or a
    pretraining model whose encoder is a ViT (the encoder, as VideoMAEModel), to the new
    folder `path`; returns the names of the tensors left out (a decoder, a prediction head).

    Raises:
        ConversionError: the model is no ViT transformers' VideoMAE can hold (one line why).
    """
    trunk = unwrapped(model)
    hints = model_hints(getattr(trunk, "encoder", trunk))
    if not hints:
        raise ConversionError("the model has no ViT trunk with a 3-D patch embedding")
    state = {key: value.detach() for key, value in trunk.state_dict().items()}
    if "head.projection.weight" not in state:
        state = {key: value for key, value in state.items() if key.startswith(ENCODER_PREFIXES)}
    stride = getattr(getattr(trunk, "encoder", trunk), "patch_embed").proj.stride
    if stride[1] != stride[2]:
        raise ConversionError(f"its patches {list(stride)} are not square, as transformers' VideoMAE's are")
    geometry = {
        "num_frames": hints["num_frames"], "image_size": hints["image_size"], "tubelet_size": stride[0],
        "patch_size": stride[1], "num_heads": hints["num_heads"], "num_channels": state["patch_embed.proj.weight"].shape[1],
        "mean_pooling": bool(getattr(trunk, "use_mean_pooling", False)), "class_names": class_names,
    }
    hf_state, config = hf_videomae_state(state, geometry)
    write_hf_directory(path, hf_state, config)
    return sorted(set(trunk.state_dict()) - set(state))
