#!/usr/bin/env python3
"""VideoMAE V2's dual masking against plain VideoMAE: one training step's forward + backward
(slowmask.benchmarks.dual_masking).

    python tools/benchmark_dual_masking.py [--cfg configs/k400_ViT_B_VideoMAEv2_PT.yaml]
        [--frames 16] [--size 224] [--batch 2] [--embed-dim 384] [--depth 12] [--heads 6]
        [--repeats 3] [--threads N]

A ViT-S encoder by default with the recipe's decoder, on the CPU. Prints the token counts,
both median times and their ratio.
"""

import argparse
import json
import logging
from typing import List, Optional

import torch

from slowmask.benchmarks.dual_masking import plain_vs_dual


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
