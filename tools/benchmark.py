#!/usr/bin/env python3
"""Throughput of the three costs of masked video pretraining, each beside a simple
baseline measured in the same run: the loader, the HOG target, a training step.

    python tools/benchmark.py --cfg CONFIG [--what loader|hog|step|mae|vjepa|all]
        [--json OUT] [--video-dir DIR] [KEY VALUE ...]

- loader: clips/s of the training loader (CONFIG's DATA.*; see slowmask/benchmarks/loader.py).
- hog: `slowmask.targets.hog` against `hog_reference` (PySlowFast's way: depthwise Sobel
  convolutions, a full-resolution (N, 3, 9, H, W) tensor per bin, a sum per cell).
- step: one MaskMViT training step (forward, backward, AdamW) with the SDPA attention
  against the same model with the explicit matmul-softmax-matmul attention; then the
  attention cores alone, and their share of the step (slowmask/benchmarks/step.py).
- mae: MAE's sparse encoder against the dense one (slowmask/benchmarks/mae.py; not in "all").
- vjepa: V-JEPA 2's ViT-B step against MaskFeat's ViT-B step at the same clips
  (slowmask/benchmarks/vjepa.py; not in "all").

Every figure: warm-up calls, then repeats (median, min, max), baselines timed in
alternation with their candidate; peak memory is the resident memory a call adds (CPU;
for the loader, the worker's peak). The table goes to stdout, the figures as JSON to
--json. CPU only: the step runs where the model is built, on the CPU.
"""

import argparse
import json
import logging
import os
from typing import List, Optional

import torch

from slowmask.benchmarks.hog import hog_rows
from slowmask.benchmarks.loader import loader_rows
from slowmask.benchmarks.mae import mae_rows
from slowmask.benchmarks.step import step_cfg, step_rows
from slowmask.benchmarks.table import format_table, machine
from slowmask.benchmarks.vjepa import vjepa_rows
from slowmask.config import load_config
from slowmask.utils.tool_args import parse_with_overrides

PARTS = ("loader", "hog", "step", "mae", "vjepa")


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfg", required=True, help="config file (the loader reads DATA.*, the step the model)")
    parser.add_argument("--what", default="all", choices=[*PARTS, "all"], help="which part (all: loader, hog, step)")
    parser.add_argument("--json", default="", help="write the figures to this JSON file")
    parser.add_argument("--video-dir", default="output/bench_videos", help="cache of the benchmark's videos")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls first (default 1)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (default 5)")
    parser.add_argument("--workers", type=int, default=1, help="loader workers (default 1)")
    parser.add_argument("--loader-items", type=int, default=8, help="videos per timed loader repeat (default 8)")
    parser.add_argument("--long-seconds", type=float, default=300.0, help="length of the long video (default 300)")
    parser.add_argument("--video-size", type=int, nargs=2, default=[320, 426], metavar=("H", "W"),
                        help="frame size of the benchmark videos (default 320 426)")
    parser.add_argument("--hog", type=int, nargs=2, default=[32, 224], metavar=("N", "SIZE"),
                        help="HOG input N x 3 x SIZE x SIZE (default 32 224)")
    parser.add_argument("--step-clip", type=int, nargs=3, default=[2, 8, 112], metavar=("B", "T", "SIZE"),
                        help="training-step batch, frames and crop size (default 2 8 112)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args, args.opts = parse_with_overrides(parser, argv)  # the rest: KEY VALUE config overrides
    return args


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    parts = ["loader", "hog", "step"] if args.what == "all" else [args.what]
    cfg = load_config(args.cfg, args.opts)
    rows: List[dict] = []
    batch, frames, size = args.step_clip
    if "loader" in parts:
        rows += loader_rows(cfg, args.video_dir, *args.video_size, long_seconds=args.long_seconds,
                            workers=args.workers, items=args.loader_items, repeats=max(1, args.repeats // 2 + 1))
    if "hog" in parts:
        rows += hog_rows(*args.hog, args.warmup, args.repeats)
    if "step" in parts:
        rows += step_rows(step_cfg(args.cfg, args.opts, frames, size), batch, args.warmup, args.repeats)
    if "mae" in parts:
        rows += mae_rows(args.cfg, frames, size, batch, args.repeats)
    if "vjepa" in parts:
        rows += vjepa_rows(frames, size, batch, args.warmup, args.repeats)
    info = machine()
    print(f"slowmask benchmark: torch {info['torch']}, {info['cpus']} CPUs, {info['cpu_threads']} threads, "
          f"{info['processor']}, CUDA {'yes' if info['cuda'] else 'no'}")
    print(format_table(rows))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"machine": info, "config": args.cfg, "opts": args.opts, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
