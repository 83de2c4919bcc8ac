"""What the ViT formats share: taking source tensors while counting them, VideoMAE's
fixed position table and attention bias, and the config keys of a slowmask ViT.

slowmask's ViT is MViT without pooling (models/mvit.py): `patch_embed.proj` (a Conv3d),
`pos_embed` or the separate tables, `blocks.N.{norm1, attn.qkv, attn.proj, norm2,
mlp.fc1, mlp.fc2, gamma_1, gamma_2}`, `norm`, `head.projection`; LayerNorms with eps 1e-6.
"""

from typing import Any, Dict, List, Mapping, Optional, Set, Tuple

import torch
from torch import Tensor

from .formats import ConversionError

# slowmask's LayerNorm epsilon (models/layers/attention.py's LayerNorm6).
LAYER_NORM_EPS = 1e-6
# Heads of the published ViTs by width (S, B, L, H, g): a .pth stores no head count.
PUBLISHED_HEADS = {384: 6, 768: 12, 1024: 16, 1280: 16, 1408: 16}
# The head width of the ViTs not in that table.
DEFAULT_HEAD_DIM = 64
SINE_BASE = 10000.0


class StateTaker:
    """Builds a slowmask state from a source state, remembering every source key taken."""

    def __init__(self, source: Mapping[str, Tensor]) -> None:
        self.source = source
        self.used: Set[str] = set()
        self.state: Dict[str, Tensor] = {}

    def has(self, key: str) -> bool:
        return key in self.source

    def take(self, key: str) -> Tensor:
        if key not in self.source:
            raise ConversionError(f"it has no tensor {key}")
        self.used.add(key)
        return self.source[key]

    def maybe(self, key: str) -> Optional[Tensor]:
        return self.take(key) if key in self.source else None

    def move(self, source_prefix: str, target_prefix: str, optional_bias: bool = True) -> None:
        """`{source_prefix}.weight` (and `.bias`) -> `{target_prefix}.weight` (and `.bias`)."""
        self.state[f"{target_prefix}.weight"] = self.take(f"{source_prefix}.weight")
        bias = self.maybe(f"{source_prefix}.bias") if optional_bias else self.take(f"{source_prefix}.bias")
        if bias is not None:
            self.state[f"{target_prefix}.bias"] = bias

    def block_indices(self, prefix: str) -> List[int]:
        """Sorted N of the keys `{prefix}N.…`; refuses gaps."""
        found = sorted({int(key[len(prefix):].split(".")[0]) for key in self.source if key.startswith(prefix)})
        if found != list(range(len(found))):
            raise ConversionError(f"its blocks {prefix}N are not numbered 0..{len(found) - 1}: {found}")
        if not found:
            raise ConversionError(f"it has no blocks {prefix}N")
        return found


def qkv_bias_of(query: Tensor, key: Optional[Tensor], value: Tensor) -> Tensor:
    """slowmask's (3 * D,) qkv bias from the query and value biases. Without a key bias
    (VideoMAE, BEiT) the key part is zero, and that is exact, not an approximation: a key
    bias b adds q . b to every logit of a query alike, which the softmax cancels."""
    return torch.cat([query, torch.zeros_like(query) if key is None else key, value])


def videomae_sine_table(num_tokens: int, dim: int) -> Tensor:
    """VideoMAE's fixed position table, (1, num_tokens, dim): token p (in (t, h, w) order),
    channel j: sin (j even) or cos (j odd) of p / 10000^(2 * (j // 2) / dim). One axis over
    the flattened grid, unlike slowmask's 3-D table (models/layers/position.py)."""
    positions = torch.arange(num_tokens, dtype=torch.float64)[:, None]
    exponents = 2 * (torch.arange(dim) // 2).to(torch.float64) / dim
    angles = positions / SINE_BASE**exponents[None, :]
    table = torch.empty_like(angles)
    table[:, 0::2], table[:, 1::2] = angles[:, 0::2].sin(), angles[:, 1::2].cos()
    return table.float().unsqueeze(0)


def heads_for(dim: int, config: Mapping[str, Any], notes: List[str]) -> int:
    """The head count: config["num_heads"] when given, else the published ViT's of this
    width (noted), else dim / 64 (noted as a guess to check)."""
    if config.get("num_heads"):
        return int(config["num_heads"])
    if dim in PUBLISHED_HEADS:
        notes.append(f"heads: {PUBLISHED_HEADS[dim]}, the published ViT's of width {dim} (the file stores none; "
                     "give num_heads if this model differs)")
        return PUBLISHED_HEADS[dim]
    if dim % DEFAULT_HEAD_DIM:
        raise ConversionError(f"its width {dim} is no published ViT's and not a multiple of {DEFAULT_HEAD_DIM}: "
                              "give its number of heads (tools/convert.py --num-heads)")
    notes.append(f"heads: {dim // DEFAULT_HEAD_DIM}, assuming heads of {DEFAULT_HEAD_DIM} channels (width {dim} is no "
                 "published ViT's; give num_heads if this is wrong)")
    return dim // DEFAULT_HEAD_DIM


def mlp_ratio_for(dim: int, hidden: int) -> float:
    """The MLP_RATIO whose int(dim * ratio) is `hidden` (VideoMAE V2's ViT-g: 6144 / 1408)."""
    ratio = hidden / dim
    while int(dim * ratio) < hidden:
        ratio = float(torch.nextafter(torch.tensor(ratio, dtype=torch.float64), torch.tensor(2.0 * ratio)))
    return ratio


def vit_config(
    dim: int,
    heads: int,
    depth: int,
    hidden: int,
    patch: Tuple[int, int, int],
    frames: int,
    crop: int,
    channels: int,
    **stem: Any,
) -> Dict[str, Any]:
    """The config keys of a plain ViT; `stem`: the MVIT keys of its stem and pooling
    (CLS_EMBED_ON, SEP_POS_EMBED, USE_FIXED_SINCOS_POS, USE_MEAN_POOLING, ...)."""
    config = {
        "MODEL.MODEL_NAME": "MViT",
        "MVIT.EMBED_DIM": dim,
        "MVIT.NUM_HEADS": heads,
        "MVIT.DEPTH": depth,
        "MVIT.MLP_RATIO": mlp_ratio_for(dim, hidden),
        "MVIT.PATCH_KERNEL": list(patch),
        "MVIT.PATCH_STRIDE": list(patch),
        "MVIT.PATCH_PADDING": [0, 0, 0],
        "MVIT.PATCH_2D": False,
        "MVIT.POOL_Q_STRIDE": [],
        "MVIT.POOL_KV_STRIDE": [],
        "MVIT.POOL_KV_STRIDE_ADAPTIVE": None,
        "MVIT.DIM_MUL": [],
        "MVIT.HEAD_MUL": [],
        "MVIT.REL_POS_SPATIAL": False,
        "MVIT.REL_POS_TEMPORAL": False,
        "MVIT.USE_ABS_POS": True,
        "MVIT.NORM_STEM": False,
        "MVIT.SEPARATE_QKV": False,
        "MVIT.POOL_FIRST": False,
        "DATA.NUM_FRAMES": frames,
        "DATA.TRAIN_CROP_SIZE": crop,
        "DATA.TEST_CROP_SIZE": crop,
        "DATA.INPUT_CHANNEL_NUM": [channels],
    }
    config.update({f"MVIT.{key}": value for key, value in stem.items()})
    return config


def grid_of(frames: int, crop: int, patch: Tuple[int, int, int]) -> Tuple[int, int, int]:
    """The token grid of clips of `frames` x `crop`^2 cut by `patch` (t, h, w)."""
    if frames % patch[0] or crop % patch[1]:
        raise ConversionError(f"clips of {frames} x {crop}^2 are not a whole number of {list(patch)} patches")
    return frames // patch[0], crop // patch[1], crop // patch[2]
