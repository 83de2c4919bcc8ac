#!/usr/bin/env python3
"""MAE's sparse encoder against the same model run densely with mask tokens
(slowmask.benchmarks.mae).

    python tools/benchmark_mae.py [--cfg configs/k400_ViT_B_MAE_PT.yaml] [--frames 16]
        [--size 224] [--batch 2] [--ratio 0.9] [--steps 3] [--threads N]

Prints the median step times of both and their ratio, also for forward + backward
alone and in CPU time.
"""

import argparse
import logging
from typing import List, Optional

import torch

from slowmask.benchmarks.mae import sparse_vs_dense


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfg", default="configs/k400_ViT_B_MAE_PT.yaml", help="an MAE recipe")
    parser.add_argument("--frames", type=int, default=16, help="clip length T (default 16)")
    parser.add_argument("--size", type=int, default=224, help="crop size (default 224)")
    parser.add_argument("--batch", type=int, default=2, help="clips per step (default 2)")
    parser.add_argument("--ratio", type=float, default=0.9, help="mask ratio (default 0.9)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per model (default 3)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--fused-adamw", action="store_true", help="torch's fused AdamW instead of the default")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    result = sparse_vs_dense(args.cfg, args.frames, args.size, args.batch, args.ratio, args.steps, args.fused_adamw)
    print(
        f"MAE step ({'fused' if args.fused_adamw else 'default'} AdamW), "
        f"{args.batch}x3x{args.frames}x{args.size}x{args.size}, {args.ratio:.0%} masked, "
        f"{int(result['tokens'])} tokens, {torch.get_num_threads()} threads: sparse {result['sparse_s']:.2f} s, "
        f"dense with mask tokens {result['dense_s']:.2f} s, speedup {result['speedup']:.2f}x "
        f"(forward + backward only: {result['sparse_fwd_bwd_s']:.2f} s vs {result['dense_fwd_bwd_s']:.2f} s, "
        f"{result['fwd_bwd_speedup']:.2f}x; CPU time per step: {result['sparse_cpu_s']:.2f} s vs "
        f"{result['dense_cpu_s']:.2f} s, {result['cpu_speedup']:.2f}x)"
    )


if __name__ == "__main__":
    main()
