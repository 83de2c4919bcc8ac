#!/usr/bin/env python3
"""VideoMAE V2's dual masking against plain VideoMAE: one training step's forward + backward.

    python tools/benchmark_dual_masking.py [--cfg configs/k400_ViT_B_VideoMAEv2_PT.yaml]
        [--frames 16] [--size 224] [--batch 2] [--embed-dim 384] [--depth 12] [--heads 6]
        [--repeats 3] [--threads N]

Both models share the same weights (a ViT-S encoder by default, the recipe's decoder), the
same clips and the same tube masks; "plain" decodes every token (VideoMAE), "dual" decodes
the visible tokens plus the masked ones the running cell keeps (one fixed draw, so every
repeat does the same work). The two are timed in alternation by slowmask.utils.timing, on
the CPU. Prints the token counts, both median times and their ratio; `plain_vs_dual(...)`
returns the same figures.
"""

import argparse
import json
import logging
from typing import Any, Dict, List, Optional

import torch
from torch import Tensor, nn

from slowmask.config import load_config
from slowmask.masking import build_mask_generator
from slowmask.models import MaskedPretrainer, build_model
from slowmask.models.dual_mask import DualMaskPretrainer, decoded_positions
from slowmask.utils.timing import compare


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


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfg", default="configs/k400_ViT_B_VideoMAEv2_PT.yaml", help="a dual-masking recipe")
    parser.add_argument("--frames", type=int, default=16, help="clip length T (default 16)")
    parser.add_argument("--size", type=int, default=224, help="crop size (default 224)")
    parser.add_argument("--batch", type=int, default=2, help="clips per step (default 2)")
    parser.add_argument("--embed-dim", type=int, default=384, help="encoder width (default 384, ViT-S)")
    parser.add_argument("--depth", type=int, default=12, help="encoder blocks (default 12)")
    parser.add_argument("--heads", type=int, default=6, help="encoder heads (default 6)")
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per model (default 3)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = plain_vs_dual(args.cfg, args.frames, args.size, args.batch, args.embed_dim, args.depth, args.heads,
                           args.repeats)
    count_keys = ("tokens", "visible_tokens", "masked_tokens", "decoder_tokens", "loss_tokens")
    counts = {key: result[key] for key in count_keys}
    print(json.dumps(counts))
    print(f"plain VideoMAE: {result['plain']['median_s']:.3f} s per forward+backward "
          f"(decoder on {result['decoder_tokens']['plain']} tokens)")
    print(f"dual masking:   {result['dual']['median_s']:.3f} s per forward+backward "
          f"(decoder on {result['decoder_tokens']['dual']} tokens)")
    print(f"ratio plain / dual: {result['speedup']:.2f}")


if __name__ == "__main__":
    main()
