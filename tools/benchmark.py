#!/usr/bin/env python3
"""Throughput of the three costs of masked video pretraining, each beside a simple
baseline measured in the same run: the loader, the HOG target, a training step.

    python tools/benchmark.py --cfg CONFIG [--what loader|hog|step|mae|all]
        [--json OUT] [--video-dir DIR] [KEY VALUE ...]

- loader: clips/s of the training loader (CONFIG's DATA.*; see benchmark_loader.py).
- hog: `slowmask.targets.hog` against `hog_reference` (PySlowFast's way: depthwise Sobel
  convolutions, a full-resolution (N, 3, 9, H, W) tensor per bin, a sum per cell).
- step: one MaskMViT training step (forward, backward, AdamW) with the SDPA attention
  against the same model with the explicit matmul-softmax-matmul attention; then the
  attention cores alone, and their share of the step (benchmark_attention.py).
- mae: MAE's sparse encoder against the dense one (tools/benchmark_mae.py; not in "all").

Every figure: warm-up calls, then repeats (median, min, max), baselines timed in
alternation with their candidate; peak memory is the resident memory a call adds (CPU;
for the loader, the worker's peak). The table goes to stdout, the figures as JSON to
--json. CPU only: the step runs where the model is built, on the CPU.
"""

import argparse
import json
import logging
import os
import platform
from typing import Dict, List, Optional

import torch
from fvcore.common.config import CfgNode

from slowmask.config import load_config
from slowmask.models import build_model
from slowmask.targets.hog import hog
from slowmask.targets.hog_reference import hog_reference
from slowmask.geometry import TokenGeometry
from slowmask.utils.timing import Timing, compare

from benchmark_attention import core_timings
from benchmark_loader import loader_rows

logger = logging.getLogger("benchmark")

PARTS = ("loader", "hog", "step", "mae")


def row(
    part: str,
    what: str,
    timing: Timing,
    baseline: str,
    baseline_timing: Timing,
    per_clip: bool = False,
    target: Optional[float] = None,
    cost_limit: Optional[float] = None,
    **extra,
) -> dict:
    """One table row. `ratio` is the speedup (baseline time / time), or with
    `cost_limit` the cost (time / baseline time); `met` checks it against `target` (a
    least speedup) or `cost_limit` (a cost to stay under)."""
    speedup = baseline_timing.median / timing.median
    ratio = 1.0 / speedup if cost_limit is not None else speedup
    met = None
    if target is not None:
        met = speedup >= target
    if cost_limit is not None:
        met = ratio < cost_limit
    return {
        "part": part,
        "what": what,
        "unit": "clips/s" if per_clip else "ms",
        "value": 1.0 / timing.median if per_clip else 1000.0 * timing.median,
        "baseline": baseline,
        "baseline_value": 1.0 / baseline_timing.median if per_clip else 1000.0 * baseline_timing.median,
        "ratio_kind": "cost" if cost_limit is not None else "speedup",
        "ratio": ratio,
        "target": (f">= {target:g}x" if target is not None else f"< {cost_limit:g}x" if cost_limit is not None else ""),
        "met": met,
        "timing": timing.as_dict(),
        "baseline_timing": baseline_timing.as_dict(),
        **extra,
    }


def hog_rows(batch: int, size: int, warmup: int, repeats: int) -> List[dict]:
    images = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    diff = (hog(images) - hog_reference(images)).abs().max().item()
    fast, reference = compare(lambda: hog(images), lambda: hog_reference(images), warmup, repeats)
    what = f"hog, {batch}x3x{size}x{size} float32, max abs diff {diff:.1e}"
    return [row("hog", what, fast, "hog_reference (PySlowFast's way)", reference, target=3.0, max_abs_diff=diff)]


def step_cfg(cfg_path: str, opts: List[str], frames: int, size: int) -> CfgNode:
    """The config at a (frames, size) clip, masks drawn on the prediction grid."""
    base = load_config(cfg_path, opts)
    stride = TokenGeometry.from_config(base).prediction_stride
    grid = [frames // stride[0], size // stride[1], size // stride[2]]
    extra = ["DATA.NUM_FRAMES", str(frames), "DATA.TRAIN_CROP_SIZE", str(size), "AUG.MASK_WINDOW_SIZE", str(grid)]
    return load_config(cfg_path, [*opts, *extra])


def _train_step(model: torch.nn.Module, clips: torch.Tensor, masks: torch.Tensor):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> None:
        loss = model(clips, masks)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def step_rows(cfg: CfgNode, batch: int, warmup: int, repeats: int) -> List[dict]:
    torch.manual_seed(cfg.RNG_SEED)
    model = build_model(cfg)
    plain = build_model(cfg)
    plain.load_state_dict(model.state_dict())
    for module in plain.modules():
        if hasattr(module, "use_sdpa"):
            module.use_sdpa = False
    generator = torch.Generator().manual_seed(0)
    frames, size = cfg.DATA.NUM_FRAMES, cfg.DATA.TRAIN_CROP_SIZE
    clips = torch.randn(batch, 3, frames, size, size, generator=generator)
    masks = torch.rand(batch, *cfg.AUG.MASK_WINDOW_SIZE, generator=generator) < cfg.AUG.MASK_RATIO
    fast, slow = compare(_train_step(model, clips, masks), _train_step(plain, clips, masks), warmup, repeats)
    what = f"{cfg.MODEL.MODEL_NAME} train step, batch {batch}, {frames}x{size}x{size}, SDPA attention"
    fast_cores, slow_cores, cores = core_timings(model, clips, masks, warmup, repeats)
    share = slow_cores.median / slow.median
    cores_what = f"attention cores alone ({cores}, forward+backward), SDPA; plain cores = {share:.0%} of the plain step"
    return [
        row("step", what, fast, "plain matmul-softmax attention", slow, target=1.2),
        row("step", cores_what, fast_cores, "plain matmul-softmax cores", slow_cores, core_share_of_step=share),
    ]


def mae_rows(cfg_path: str, frames: int, size: int, batch: int, repeats: int) -> List[dict]:
    from benchmark_mae import sparse_vs_dense

    result = sparse_vs_dense(cfg_path, frames, size, batch, steps=repeats)
    sparse, dense = Timing([result["sparse_s"]]), Timing([result["dense_s"]])
    what = f"MAE train step, batch {batch}, {frames}x{size}x{size}, sparse encoder (medians of {repeats})"
    return [row("mae", what, sparse, "dense encoder with mask tokens", dense)]


def _memory(timing: dict, before: str = ", ", after: str = "") -> str:
    peak = timing["peak_bytes"]
    return "" if peak is None else f"{before}peak {peak / 2**20:.0f} MiB{after}"


def format_table(rows: List[dict]) -> str:
    """The rows as a Markdown table."""
    lines = [
        "| part | measured | value | baseline | baseline value | ratio | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        timing = r["timing"]
        spread = f"{timing['min_s'] * 1000:.1f}-{timing['max_s'] * 1000:.1f} ms"
        if r["unit"] == "clips/s":
            spread += "/clip"
        met = "" if r["met"] is None else ("yes" if r["met"] else "no")
        lines.append(
            f"| {r['part']} | {r['what']} | {r['value']:.1f} {r['unit']} ({spread}{_memory(timing)}) "
            f"| {r['baseline']} | {r['baseline_value']:.1f} {r['unit']}{_memory(r['baseline_timing'], ' (', ')')} "
            f"| {r['ratio']:.2f}x {r['ratio_kind']} | {r['target']} | {met} |"
        )
    return "\n".join(lines)


def machine() -> Dict[str, object]:
    return {
        "cpu_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "cuda": torch.cuda.is_available(),
    }


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
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    return parser.parse_args(argv)


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
        rows += loader_rows(cfg, row, args.video_dir, *args.video_size, long_seconds=args.long_seconds,
                            workers=args.workers, items=args.loader_items, repeats=max(1, args.repeats // 2 + 1))
    if "hog" in parts:
        rows += hog_rows(*args.hog, args.warmup, args.repeats)
    if "step" in parts:
        rows += step_rows(step_cfg(args.cfg, args.opts, frames, size), batch, args.warmup, args.repeats)
    if "mae" in parts:
        rows += mae_rows(args.cfg, frames, size, batch, args.repeats)
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
