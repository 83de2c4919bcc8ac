"""VideoMAE V2's dual masking against plain VideoMAE: one training step's forward +
backward (tools/benchmark_dual_masking.py).

Both models share the same weights, clips and tube masks; "plain" decodes every token
(VideoMAE), "dual" decodes the visible tokens plus the masked ones the running cell keeps
(one fixed draw, so every repeat does the same work). The two are timed in alternation.
"""

from typing import Any, Dict

import torch
from torch import Tensor, nn

from slowmask.config import load_config
from slowmask.masking import build_mask_generator
from slowmask.methods import MaskedPretrainer, build_model
from slowmask.methods.videomae_v2 import DualMaskPretrainer, decoded_positions

from .timing import compare


def _forward_backward(model: nn.Module, clips: Tensor, masks: Tensor, *extra: Tensor) -> None:
    model.zero_grad(set_to_none=True)
    model(clips, masks, *extra)["loss"].backward()


def plain_vs_dual(
    cfg_path: str = "configs/k400_ViT_B_VideoMAEv2_PT.yaml",
    frames: int = 16,
    size: int = 224,
    batch: int = 2,
    embed_dim: int = 384,
    depth: int = 12,
    heads: int = 6,
    repeats: int = 3,
) -> Dict[str, Any]:
    """Token counts per clip ("tokens", "visible_tokens", "masked_tokens",
    "decoder_tokens": {"plain", "dual"}, "loss_tokens": {"plain", "dual"}), the timings of
    forward + backward ("plain", "dual": Timing.as_dict()) and "speedup" = plain / dual
    median seconds."""
    cfg = load_config(cfg_path, [
        "DATA.NUM_FRAMES", str(frames), "DATA.TRAIN_CROP_SIZE", str(size), "MVIT.EMBED_DIM", str(embed_dim),
        "MVIT.DEPTH", str(depth), "MVIT.NUM_HEADS", str(heads), "MASK.PRETRAIN_DEPTH", str([depth - 1]),
    ])
    torch.manual_seed(0)
    dual = build_model(cfg)
    if not isinstance(dual, DualMaskPretrainer):
        raise ValueError(f"{cfg_path} does not build dual masking: set MASK.DECODER_MASK_TYPE running_cell")
    plain = MaskedPretrainer(dual.encoder, dual.pred_head, dual.target, dual.loss_fn)
    generator = build_mask_generator(cfg)
    masks = torch.stack([generator(torch.Generator().manual_seed(i)) for i in range(batch)])
    clips = torch.randn(batch, 3, frames, size, size, generator=torch.Generator().manual_seed(0))
    grid = dual.encoder.patch_grid
    if tuple(masks.shape[1:]) != tuple(grid):
        raise ValueError(
            f"the benchmark needs the mask grid to be the token grid {tuple(grid)}; set AUG.MASK_WINDOW_SIZE"
        )
    drop = dual.draw_decoder_mask(batch, grid, clips.device)
    token_mask = masks.flatten(1)  # (B, N), True = hidden from the encoder
    positions, is_target = decoded_positions(token_mask, drop)
    dual_timing, plain_timing = compare(
        lambda: _forward_backward(dual, clips, masks, drop), lambda: _forward_backward(plain, clips, masks),
        warmup=1, repeats=repeats,
    )
    tokens = int(token_mask.shape[1])
    masked = int(token_mask[0].sum())
    return {
        "tokens": tokens,
        "visible_tokens": tokens - masked,
        "masked_tokens": masked,
        "decoder_tokens": {"plain": tokens, "dual": int(positions.shape[1])},
        "loss_tokens": {"plain": masked, "dual": int(is_target[0].sum())},
        "plain": plain_timing.as_dict(),
        "dual": dual_timing.as_dict(),
        "speedup": plain_timing.median / dual_timing.median,
    }
