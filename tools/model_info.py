#!/usr/bin/env python3
"""Parameters, GFLOPs (fvcore) and the per-stage token grid of the model a config builds;
with --memory, the memory plan of its training instead.

    python tools/model_info.py --cfg configs/k400_MViT_S_FT.yaml [KEY VALUE ...]
    python tools/model_info.py --cfg configs/k400_ViT_g_VideoMAEv2_PT.yaml --memory --world-size 64

GFLOPs are for one clip of DATA.NUM_FRAMES x DATA.TRAIN_CROP_SIZE^2 (--test: the test
crop), counted as PySlowFast counts them (see slowmask/utils/model_info.py).

--memory prints, per process, the parameters, gradients, optimizer state, activations at
the clips of TRAIN.BATCH_SIZE / --world-size videos and the rest of a training step's peak
(slowmask/engine/memory_plan.py), for TRAIN.SHARDING none (DDP) and fsdp, and the largest
batch per process that fits --gpu-memory GiB. The model is built on the meta device and a
narrow copy runs one clip to count the tokens, so a 1 B-parameter recipe needs no weights.
"""

import argparse
import logging
import sys
from typing import List, Optional, Tuple

import torch
from fvcore.common.config import CfgNode

from slowmask.benchmarks.memory import planned_and_measured
from slowmask.config import load_config
from slowmask.engine.memory_plan import GIB, block_passes, clips_per_process, largest_batch, plan_lines, plan_memory
from slowmask.methods import build_model
from slowmask.models.build import trunk_args
from slowmask.geometry import block_grids, world_size
from slowmask.utils.errors import UsageError, run_tool
from slowmask.utils.model_info import count_flops, count_parameters, mvit_stages, significant, stage_lines
from slowmask.utils.tool_args import parse_with_overrides, tool_parser


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument("--cfg", dest="cfg_file", required=True, help="yaml config file")
    parser.add_argument("--test", action="store_true", help="count at DATA.TEST_CROP_SIZE instead of the training crop")
    parser.add_argument("--no-flops", action="store_true", help="parameters and stages only (no forward pass)")
    parser.add_argument("--memory", action="store_true", help="the memory plan of training instead (per process)")
    parser.add_argument("--gpu-memory", type=float, default=80.0, help="GiB of one GPU, for the largest batch (80)")
    parser.add_argument(
        "--world-size", type=int, default=0, help="processes of the job (default: NUM_GPUS x NUM_SHARDS)"
    )
    parser.add_argument(
        "--measure-batch", type=int, default=0,
        help="with --memory: also train 2 steps of this many clips here (the GPU when NUM_GPUS > 0) and print "
        "the measured peak beside the plan's",
    )
    args, args.opts = parse_with_overrides(parser, argv)  # the rest: KEY VALUE config overrides
    return args


def example_inputs(cfg: CfgNode, crop: int) -> Tuple[torch.Tensor, ...]:
    """One clip (1, 3, T, crop, crop), with a mask (1, t, h, w) drawn by the configured
    generator when the model pretrains."""
    clip = torch.zeros(1, cfg.DATA.INPUT_CHANNEL_NUM[0], cfg.DATA.NUM_FRAMES, crop, crop)
    if not cfg.MASK.ENABLE:
        return (clip,)
    from slowmask.masking import build_mask_generator

    generator = torch.Generator().manual_seed(cfg.RNG_SEED)
    return clip, build_mask_generator(cfg)(generator).unsqueeze(0)


def report(cfg: CfgNode, test_crop: bool = False, with_flops: bool = True) -> List[str]:
    """The lines model_info prints."""
    model = build_model(cfg).eval()
    params = count_parameters(model)
    crop = cfg.DATA.TEST_CROP_SIZE if test_crop else cfg.DATA.TRAIN_CROP_SIZE
    inputs = example_inputs(cfg, crop)
    lines = [
        f"model: {cfg.MODEL.MODEL_NAME}",
        f"input: {' x '.join(map(str, inputs[0].shape))}",
        f"parameters: {params:,} ({significant(params / 1e6)} M)",
    ]
    if with_flops:
        gflops = count_flops(model, inputs) / 1e9
        lines.append(f"GFLOPs: {significant(gflops)} (fvcore; one multiply-add = one flop; one clip)")
    layout = trunk_args(cfg)["layout"]
    grids = block_grids(layout[0].input_size, cfg.MVIT.POOL_Q_STRIDE, len(layout))
    stages = mvit_stages([b.dim for b in layout], [b.num_heads for b in layout], grids)
    return lines + stage_lines(layout[0].input_size, layout[0].dim, stages)


def memory_report(cfg: CfgNode, processes: int, gpu_gib: float) -> List[str]:
    """The lines of --memory: the plan under none and fsdp at TRAIN.BATCH_SIZE over `processes`."""
    if processes < 1 or gpu_gib <= 0:
        raise UsageError(f"--world-size must be at least 1 and --gpu-memory above 0, got {processes} and {gpu_gib}")
    batch = clips_per_process(cfg, processes)
    passes, shape = block_passes(cfg)
    plans = [plan_memory(passes, shape, batch, sharding, processes) for sharding in ("none", "fsdp")]
    largest = [largest_batch(passes, shape, int(gpu_gib * GIB), p.sharding, processes) for p in plans]
    lines = [
        f"model: {cfg.MODEL.MODEL_NAME}, {shape.params:,} parameters ({shape.trainable:,} trained)",
        f"batch: {batch} clips per process (TRAIN.BATCH_SIZE {cfg.TRAIN.BATCH_SIZE} videos over {processes} processes, "
        f"{batch * processes // max(1, cfg.TRAIN.BATCH_SIZE)} clips a video); "
        f"autocast {shape.autocast}, activation checkpointing {shape.checkpointed}",
        f"block passes per clip: {len(passes)} ({sum(p.keeps_activations for p in passes)} keep activations)",
    ]
    return lines + plan_lines(plans, largest, gpu_gib)


def run(argv: List[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    # The teacher of a distillation recipe adds nothing to the student's counts: its
    # architecture (its width sizes the prediction head) is built without its checkpoint.
    cfg = load_config(args.cfg_file, ["TEACHER.LOAD_WEIGHTS", "False"] + list(args.opts))
    if args.memory:
        processes = args.world_size or world_size(cfg.NUM_GPUS, cfg.NUM_SHARDS)
        sys.stdout.write("\n".join(memory_report(cfg, processes, args.gpu_memory)) + "\n")
        if args.measure_batch > 0:
            device = torch.device("cuda" if cfg.NUM_GPUS > 0 and torch.cuda.is_available() else "cpu")
            figures = planned_and_measured(cfg, args.measure_batch, device)
            sys.stdout.write(
                f"{args.measure_batch} clips on one process ({device.type}): planned {figures['planned'] / 2**20:.1f} MiB, "
                f"measured peak {figures['measured'] / 2**20:.1f} MiB "
                f"({figures['measured'] / figures['planned']:.2f} x the plan)\n"
            )
        return 0
    sys.stdout.write("\n".join(report(cfg, args.test, not args.no_flops)) + "\n")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    return run_tool(run, argv)


if __name__ == "__main__":
    sys.exit(main())
