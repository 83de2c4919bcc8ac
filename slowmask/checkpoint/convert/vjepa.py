"""V-JEPA's published layouts -> slowmask's V-JEPA state dict (methods/vjepa.py).

Two sources, each a mapping `(source_state, source_config) -> (state_dict, config, used)`
(the contract of this package): `state_dict` in slowmask's names (the encoder flat, the
predictor under `pred_head.`, the target encoder under `target.encoder.`), `config` the
slowmask keys that build the model it fits, `used` the source keys consumed.

- `from_vjepa_checkpoint`: facebookresearch/jepa's and vjepa2's training `.pt`, a dict
  {"encoder", "target_encoder", "predictor", ...} whose tensors carry a `module.backbone.`
  prefix (DistributedDataParallel around the multi-sequence wrapper). The names under the
  prefix are already slowmask's (`patch_embed.proj`, `blocks.N.attn.qkv`, `norm`,
  `predictor_embed`, `mask_tokens.i`, `predictor_blocks.N`, ...). The encoder that
  probes and fine-tuning read is the target encoder by default (what V-JEPA's
  evaluations read); source_config {"encoder": "encoder"} takes the context encoder.
- `from_hf_vjepa2`: transformers' `VJEPA2Model` state dict (`encoder.layer.N.attention.
  query/key/value` joined into `qkv`, `encoder.layernorm` -> `norm`, `predictor.
  embeddings.mask_tokens` (M, 1, 1, D) -> M tokens (1, 1, D)), with its config as a dict.
  Its one encoder fills both the encoder and the target encoder.
"""

from typing import Any, Dict, Iterable, Mapping, Set, Tuple

import torch
from torch import Tensor

OFFICIAL_PREFIX = "module.backbone."

# Heads of the ViT widths V-JEPA publishes (ViT-L, ViT-H, ViT-g), where a checkpoint's
# shapes do not say them; source_config {"num_heads": n} overrides.
HEADS_OF_WIDTH = {384: 6, 768: 12, 1024: 16, 1280: 16, 1408: 22}

ConvertResult = Tuple[Dict[str, Tensor], Dict[str, Any], Set[str]]


def flatten_state(source: Mapping[str, Any], prefix: str = "") -> Dict[str, Tensor]:
    """A nested checkpoint dict -> {"a.b.c": tensor} (non-tensor entries left out)."""
    flat: Dict[str, Tensor] = {}
    for key, value in source.items():
        if isinstance(value, Mapping):
            flat.update(flatten_state(value, f"{prefix}{key}."))
        elif isinstance(value, Tensor):
            flat[prefix + key] = value
    return flat


def _block_count(names: Iterable[str], prefix: str) -> int:
    indices = {int(name[len(prefix) :].split(".")[0]) for name in names if name.startswith(prefix)}
    return max(indices) + 1 if indices else 0


def _heads(width: int, source_config: Mapping[str, Any], key: str, default: Any) -> int:
    heads = source_config.get(key, default)
    if heads is None:
        raise ValueError(f"the number of attention heads of a {width}-wide ViT is not known: give source_config[{key!r}]")
    return int(heads)


def _part(flat: Mapping[str, Tensor], part: str) -> Dict[str, Tensor]:
    """The tensors of `part` ("encoder", "predictor", ...) without their prefixes."""
    start = f"{part}.{OFFICIAL_PREFIX}"
    found = {name[len(start) :]: value for name, value in flat.items() if name.startswith(start)}
    if not found:
        parts = sorted({name.split(".")[0] for name in flat})
        raise ValueError(f"the checkpoint has no {part!r} tensors under {OFFICIAL_PREFIX!r}; it holds {parts}")
    return found


def _official_config(encoder: Mapping[str, Tensor], predictor: Mapping[str, Tensor], source_config: Mapping[str, Any]) -> Dict[str, Any]:
    """slowmask's keys of the networks an official checkpoint holds."""
    width, _, tubelet, patch, _ = encoder["patch_embed.proj.weight"].shape
    pred_width = predictor["predictor_embed.weight"].shape[0]
    rope = "pos_embed" not in encoder
    config = {
        "MODEL.MODEL_NAME": "VJEPA",
        "MVIT.EMBED_DIM": int(width),
        "MVIT.NUM_HEADS": _heads(width, source_config, "num_heads", HEADS_OF_WIDTH.get(int(width))),
        "MVIT.DEPTH": _block_count(encoder, "blocks."),
        "MVIT.MLP_RATIO": encoder["blocks.0.mlp.fc1.weight"].shape[0] / width,
        "MVIT.QKV_BIAS": "blocks.0.attn.qkv.bias" in encoder,
        "MVIT.PATCH_KERNEL": [int(tubelet), int(patch), int(patch)],
        "MVIT.PATCH_STRIDE": [int(tubelet), int(patch), int(patch)],
        "MVIT.PATCH_PADDING": [0, 0, 0],
        "MVIT.CLS_EMBED_ON": False,
        "MVIT.USE_ROPE": rope,
        "MVIT.USE_ABS_POS": not rope,
        "MVIT.USE_FIXED_SINCOS_POS": not rope,
        "JEPA.PRED_EMBED_DIM": int(pred_width),
        "JEPA.PRED_DEPTH": _block_count(predictor, "predictor_blocks."),
        "JEPA.PRED_NUM_HEADS": _heads(pred_width, source_config, "pred_num_heads", 12),
        "JEPA.PRED_NUM_MASK_TOKENS": _block_count(predictor, "mask_tokens."),
    }
    if not rope:
        config["MVIT.SINCOS_LAYOUT"] = source_config.get("sincos_layout", "vjepa_uniform")
    return config


def from_vjepa_checkpoint(source_state: Mapping[str, Any], source_config: Mapping[str, Any]) -> ConvertResult:
    """A V-JEPA / V-JEPA 2 training checkpoint (nested or flattened) -> slowmask's V-JEPA.

    source_config: optional "encoder" ("target_encoder", the default, or "encoder": which
    network becomes the encoder probes and fine-tuning read), "num_heads", "pred_num_heads"
    (where the width does not say them), "sincos_layout" (V-JEPA 1's tables).
    """
    flat = flatten_state(source_state)
    chosen = source_config.get("encoder", "target_encoder")
    if chosen not in ("target_encoder", "encoder"):
        raise ValueError(f'source_config["encoder"] must be "target_encoder" or "encoder", got {chosen!r}')
    encoder, predictor = _part(flat, chosen), _part(flat, "predictor")
    target = _part(flat, "target_encoder") if "target_encoder." + OFFICIAL_PREFIX + "norm.weight" in flat else encoder
    state = dict(encoder)
    state.update({f"pred_head.{name}": value for name, value in predictor.items()})
    state.update({f"target.encoder.{name}": value for name, value in target.items()})
    used = {name for name in flat if name.split(".")[0] in (chosen, "predictor", "target_encoder")}
    return state, _official_config(encoder, predictor, source_config), used


# transformers' names -> slowmask's, per encoder / predictor block and for the rest.
HF_BLOCK_NAMES = {
    "norm1": "norm1",
    "norm2": "norm2",
    "attention.proj": "attn.proj",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
}
HF_TOP_NAMES = {
    "encoder.embeddings.patch_embeddings.proj": "patch_embed.proj",
    "encoder.layernorm": "norm",
    "predictor.embeddings.predictor_embeddings": "pred_head.predictor_embed",
    "predictor.layernorm": "pred_head.predictor_norm",
    "predictor.proj": "pred_head.predictor_proj",
}


def _hf_blocks(source: Mapping[str, Tensor], hf_prefix: str, prefix: str, depth: int, used: Set[str]) -> Dict[str, Tensor]:
    """transformers' layers `hf_prefix.N.*` -> slowmask's blocks `prefix.N.*`, q/k/v joined."""
    state = {}
    for index in range(depth):
        hf, ours = f"{hf_prefix}.{index}.", f"{prefix}.{index}."
        for suffix in ("weight", "bias"):
            parts = [f"{hf}attention.{name}.{suffix}" for name in ("query", "key", "value")]
            if all(part in source for part in parts):
                state[f"{ours}attn.qkv.{suffix}"] = torch.cat([source[part] for part in parts])
                used.update(parts)
            for hf_name, name in HF_BLOCK_NAMES.items():
                key = f"{hf}{hf_name}.{suffix}"
                if key in source:
                    state[f"{ours}{name}.{suffix}"] = source[key]
                    used.add(key)
    return state


def from_hf_vjepa2(source_state: Mapping[str, Tensor], source_config: Mapping[str, Any]) -> ConvertResult:
    """transformers' VJEPA2Model state dict and its config (`VJEPA2Config.to_dict()`) ->
    slowmask's V-JEPA; its encoder is both the encoder and the target encoder."""
    cfg = source_config
    used: Set[str] = set()
    state = _hf_blocks(source_state, "encoder.layer", "blocks", cfg["num_hidden_layers"], used)
    state.update(_hf_blocks(source_state, "predictor.layer", "pred_head.predictor_blocks", cfg["pred_num_hidden_layers"], used))
    for hf_name, name in HF_TOP_NAMES.items():
        for suffix in ("weight", "bias"):
            if f"{hf_name}.{suffix}" in source_state:
                state[f"{name}.{suffix}"] = source_state[f"{hf_name}.{suffix}"]
                used.add(f"{hf_name}.{suffix}")
    tokens = source_state["predictor.embeddings.mask_tokens"]  # (M, 1, 1, D)
    used.add("predictor.embeddings.mask_tokens")
    state.update({f"pred_head.mask_tokens.{i}": token for i, token in enumerate(tokens)})
    encoder = [name for name in state if not name.startswith("pred_head.")]
    state.update({f"target.encoder.{name}": state[name] for name in encoder})
    patch, tubelet = int(cfg["patch_size"]), int(cfg["tubelet_size"])
    config = {
        "MODEL.MODEL_NAME": "VJEPA",
        "DATA.NUM_FRAMES": int(cfg["frames_per_clip"]),
        "DATA.TRAIN_CROP_SIZE": int(cfg["crop_size"]),
        "MVIT.EMBED_DIM": int(cfg["hidden_size"]),
        "MVIT.NUM_HEADS": int(cfg["num_attention_heads"]),
        "MVIT.DEPTH": int(cfg["num_hidden_layers"]),
        "MVIT.MLP_RATIO": float(cfg["mlp_ratio"]),
        "MVIT.QKV_BIAS": bool(cfg["qkv_bias"]),
        "MVIT.PATCH_KERNEL": [tubelet, patch, patch],
        "MVIT.PATCH_STRIDE": [tubelet, patch, patch],
        "MVIT.PATCH_PADDING": [0, 0, 0],
        "MVIT.CLS_EMBED_ON": False,
        "MVIT.USE_ROPE": True,
        "MVIT.USE_ABS_POS": False,
        "JEPA.PRED_EMBED_DIM": int(cfg["pred_hidden_size"]),
        "JEPA.PRED_DEPTH": int(cfg["pred_num_hidden_layers"]),
        "JEPA.PRED_NUM_HEADS": int(cfg["pred_num_attention_heads"]),
        "JEPA.PRED_NUM_MASK_TOKENS": int(tokens.shape[0]),
    }
    return state, config, used


__all__ = ["from_hf_vjepa2", "from_vjepa_checkpoint", "flatten_state"]
