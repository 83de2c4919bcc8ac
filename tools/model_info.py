#!/usr/bin/env python3
"""Parameters, GFLOPs (fvcore) and the per-stage token grid of the model a config builds.

    python tools/model_info.py --cfg configs/k400_MViT_S_FT.yaml [KEY VALUE ...]

GFLOPs are for one clip of DATA.NUM_FRAMES x DATA.TRAIN_CROP_SIZE^2 (--test: the test
crop), counted as PySlowFast counts them (see slowmask/utils/model_info.py).
"""

import argparse
import logging
import sys
from typing import List, Optional, Tuple

import torch
from fvcore.common.config import CfgNode

from slowmask.config import load_config
from slowmask.methods import build_model
from slowmask.models.build import trunk_args
from slowmask.geometry import block_grids
from slowmask.utils.errors import run_tool
from slowmask.utils.model_info import count_flops, count_parameters, mvit_stages, significant, stage_lines
from slowmask.utils.tool_args import parse_with_overrides, tool_parser


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument("--cfg", dest="cfg_file", required=True, help="yaml config file")
    parser.add_argument("--test", action="store_true", help="count at DATA.TEST_CROP_SIZE instead of the training crop")
    parser.add_argument("--no-flops", action="store_true", help="parameters and stages only (no forward pass)")
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


def run(argv: List[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    # The teacher of a distillation recipe adds nothing to the student's counts: its
    # architecture (its width sizes the prediction head) is built without its checkpoint.
    cfg = load_config(args.cfg_file, ["TEACHER.LOAD_WEIGHTS", "False"] + list(args.opts))
    sys.stdout.write("\n".join(report(cfg, args.test, not args.no_flops)) + "\n")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    return run_tool(run, argv)


if __name__ == "__main__":
    sys.exit(main())
