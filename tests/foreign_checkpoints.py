"""Tiny foreign checkpoints for the conversion tests: official VideoMAE state dicts written
from the published key names and shapes (MCG-NJU/VideoMAE's modeling_finetune.py and
modeling_pretrain.py), VideoMAE's forward as its code computes it, every parameter made
non-zero, and the slowmask model a converted config builds."""

import math
from typing import Any, Dict, List, Mapping, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from slowmask.config import load_config
from slowmask.methods import build_model

# A tiny VideoMAE: width 64, 2 heads, 2 blocks, 2x16x16 tubes, clips of 4 x 32^2 (8 tokens).
DIM, HEADS, DEPTH, HIDDEN, TUBELET, PATCH, FRAMES, CROP, CLASSES = 64, 2, 2, 128, 2, 16, 4, 32, 5
TOKENS = (FRAMES // TUBELET) * (CROP // PATCH) ** 2
HINTS = {"num_frames": FRAMES, "image_size": CROP, "num_heads": HEADS}


def nonzero_(tensors: Mapping[str, Tensor], seed: int = 0) -> None:
    """Fill every tensor with values of magnitude 0.05 to 0.25 and random sign (LayerNorm
    weights: 0.5 to 1.5), so that a bias loaded as zeros changes the outputs."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in tensors.items():
            magnitude = torch.rand(tensor.shape, generator=generator) * 0.2 + 0.05
            sign = torch.randint(0, 2, tensor.shape, generator=generator) * 2 - 1
            values = magnitude * sign
            if ("norm" in name or "layernorm" in name) and name.endswith("weight"):
                values = 1.0 + values * 2
            tensor.copy_(values)


def videomae_state(pretraining: bool = False, layer_scale: bool = False) -> Dict[str, Tensor]:
    """An official VideoMAE state: fine-tuned (mean pooling: fc_norm, head) or pretraining
    (encoder.*, encoder_to_decoder, mask_token, a one-block decoder)."""
    prefix = "encoder." if pretraining else ""
    shapes = {f"{prefix}patch_embed.proj.weight": (DIM, 3, TUBELET, PATCH, PATCH), f"{prefix}patch_embed.proj.bias": (DIM,)}
    for index in range(DEPTH):
        block = f"{prefix}blocks.{index}."
        shapes.update({
            block + "norm1.weight": (DIM,), block + "norm1.bias": (DIM,),
            block + "attn.q_bias": (DIM,), block + "attn.v_bias": (DIM,),
            block + "attn.qkv.weight": (3 * DIM, DIM),
            block + "attn.proj.weight": (DIM, DIM), block + "attn.proj.bias": (DIM,),
            block + "norm2.weight": (DIM,), block + "norm2.bias": (DIM,),
            block + "mlp.fc1.weight": (HIDDEN, DIM), block + "mlp.fc1.bias": (HIDDEN,),
            block + "mlp.fc2.weight": (DIM, HIDDEN), block + "mlp.fc2.bias": (DIM,),
        })
        if layer_scale:
            shapes.update({block + "gamma_1": (DIM,), block + "gamma_2": (DIM,)})
    if pretraining:
        shapes.update({
            "encoder.norm.weight": (DIM,), "encoder.norm.bias": (DIM,),
            "encoder_to_decoder.weight": (32, DIM), "mask_token": (1, 1, 32),
            "decoder.blocks.0.attn.qkv.weight": (96, 32), "decoder.norm.weight": (32,),
            "decoder.head.weight": (TUBELET * PATCH * PATCH * 3, 32),
        })
    else:
        shapes.update({"fc_norm.weight": (DIM,), "fc_norm.bias": (DIM,),
                       "head.weight": (CLASSES, DIM), "head.bias": (CLASSES,)})
    state = {name: torch.empty(shape) for name, shape in shapes.items()}
    nonzero_(state)
    return state


def tiny_hf_config(**changes):
    """The tiny model as a transformers VideoMAEConfig (its LayerNorms with VideoMAE's eps)."""
    from transformers import VideoMAEConfig  # a test extra, imported by the tests that need it

    settings = dict(
        image_size=CROP, patch_size=PATCH, num_frames=FRAMES, tubelet_size=TUBELET, hidden_size=DIM,
        num_hidden_layers=DEPTH, num_attention_heads=HEADS, intermediate_size=HIDDEN, layer_norm_eps=1e-6,
        num_labels=CLASSES, decoder_hidden_size=32, decoder_num_hidden_layers=1, decoder_num_attention_heads=2,
        decoder_intermediate_size=64,
    )
    return VideoMAEConfig(**{**settings, **changes})


def sinusoid_table(n_position: int, d_hid: int) -> Tensor:
    """VideoMAE's get_sinusoid_encoding_table, as its code writes it (numpy, float64)."""
    table = np.array([[pos / np.power(10000, 2 * (j // 2) / d_hid) for j in range(d_hid)] for pos in range(n_position)])
    table[:, 0::2] = np.sin(table[:, 0::2])
    table[:, 1::2] = np.cos(table[:, 1::2])
    return torch.FloatTensor(table).unsqueeze(0)


def videomae_forward(state: Dict[str, Tensor], clip: Tensor, pretraining: bool = False) -> Tensor:
    """VideoMAE's forward on a (B, 3, T, H, W) clip: the fine-tuned model's logits, or the
    pretraining encoder's normalized tokens (B, N, D)."""
    prefix = "encoder." if pretraining else ""
    ln = lambda x, name: F.layer_norm(x, (x.shape[-1],), state[name + ".weight"], state[name + ".bias"], 1e-6)
    x = F.conv3d(clip, state[f"{prefix}patch_embed.proj.weight"], state[f"{prefix}patch_embed.proj.bias"],
                 stride=(TUBELET, PATCH, PATCH)).flatten(2).transpose(1, 2)
    x = x + sinusoid_table(x.shape[1], x.shape[2])
    batch, tokens, dim = x.shape
    for index in range(DEPTH):
        block = f"{prefix}blocks.{index}."
        bias = torch.cat((state[block + "attn.q_bias"], torch.zeros(dim), state[block + "attn.v_bias"]))
        qkv = F.linear(ln(x, block + "norm1"), state[block + "attn.qkv.weight"], bias)
        q, k, v = qkv.reshape(batch, tokens, 3, HEADS, -1).permute(2, 0, 3, 1, 4)
        attn = ((q * (dim // HEADS) ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1)
        out = F.linear((attn @ v).transpose(1, 2).reshape(batch, tokens, dim),
                       state[block + "attn.proj.weight"], state[block + "attn.proj.bias"])
        x = x + state.get(block + "gamma_1", 1.0) * out
        hidden = F.gelu(F.linear(ln(x, block + "norm2"), state[block + "mlp.fc1.weight"], state[block + "mlp.fc1.bias"]))
        x = x + state.get(block + "gamma_2", 1.0) * F.linear(hidden, state[block + "mlp.fc2.weight"],
                                                               state[block + "mlp.fc2.bias"])
    if pretraining:
        return ln(x, "encoder.norm")
    return F.linear(ln(x.mean(1), "fc_norm"), state["head.weight"], state["head.bias"])


def config_opts(config: Mapping[str, Any]) -> List[str]:
    return [item for key, value in config.items() for item in (key, str(value))]


def slowmask_model(config: Mapping[str, Any], state: Optional[Dict[str, Tensor]] = None) -> nn.Module:
    """The eval-mode model the converted `config` builds, with `state` loaded strictly
    (every tensor of the model filled) when given."""
    torch.manual_seed(0)
    model = build_model(load_config(None, config_opts(config) + ["NUM_GPUS", "0"])).eval()
    if state is not None:
        model.load_state_dict(state, strict=True)
    return model


def encoder_tokens(model: nn.Module, clip: Tensor) -> Tensor:
    """A slowmask ViT's final tokens (B, N, D), its `norm` applied to each."""
    return model.norm(model.forward_features(clip))


def scale_of(reference: Tensor) -> float:
    return max(1.0, float(reference.abs().max()))


def still_clip(image: Tensor, frames: int) -> Tensor:
    """(B, 3, H, W) -> (B, 3, frames, H, W), the image repeated."""
    return image.unsqueeze(2).repeat(1, 1, frames, 1, 1)


def assert_close(actual: Tensor, expected: Tensor, relative: float = 1e-5) -> None:
    scale = scale_of(expected)
    difference = float((actual - expected).abs().max())
    assert actual.shape == expected.shape
    assert difference <= relative * scale, f"largest difference {difference:.3g} over scale {scale:.3g}"


__all__ = [name for name in dir() if not name.startswith("_") and name not in ("math", "np", "F", "nn")]
