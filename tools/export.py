#!/usr/bin/env python3
"""Write a classifier for inference, as TorchScript or a torch.export program.

    python tools/export.py --cfg configs/k400_MViT_S_FT.yaml --weights checkpoint.pyth \\
        --format torchscript --output mvit_s.pt

The model is traced at a batch of two clips of DATA.NUM_FRAMES x DATA.TEST_CROP_SIZE^2
in eval mode (any batch size runs afterwards) and checked against the eager model on it. Load the result with
`torch.jit.load(path)` (torchscript) or `torch.export.load(path).module()` (export);
either maps (B, 3, T, S, S) normalized clips to (B, MODEL.NUM_CLASSES) logits.
"""

import argparse
import logging
import sys
from typing import List, Optional

import torch
from fvcore.common.config import CfgNode
from torch import nn

from slowmask.config import load_config
from slowmask.engine.checkpoint import resume
from slowmask.models import build_model
from slowmask.utils.errors import UsageError, run_tool

logger = logging.getLogger("export")

FORMATS = ("torchscript", "export")


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfg", dest="cfg_file", required=True, help="yaml config file of the classifier")
    parser.add_argument("--weights", default="", help="checkpoint whose model_state to export (default: initialized)")
    parser.add_argument("--format", choices=FORMATS, default="torchscript")
    parser.add_argument("--output", required=True, help="file to write (.pt2 for --format export)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE overrides")
    return parser.parse_args(argv)


def classifier(cfg: CfgNode, weights: str) -> nn.Module:
    """The eval-mode classifier of `cfg`, with the model_state of `weights` when given."""
    if cfg.MASK.ENABLE:
        raise ValueError(
            f"export writes classifiers (model(x) -> logits); this config pretrains "
            f"(MASK.ENABLE True, MODEL.MODEL_NAME {cfg.MODEL.MODEL_NAME}): use a fine-tuning config"
        )
    model = build_model(cfg)
    if weights:
        resume(weights, model)
    return model.eval()


def export(model: nn.Module, example: torch.Tensor, fmt: str, output: str) -> float:
    """Write `model` traced at `example`; returns the largest difference between the
    written program's and the eager model's logits on `example`."""
    with torch.no_grad():
        expected = model(example)
        if fmt == "torchscript":
            program = torch.jit.trace(model, example)
            program.save(output)
            written = torch.jit.load(output)
        else:
            batch = torch.export.Dim("batch", min=1)
            program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
            torch.export.save(program, output)
            written = torch.export.load(output).module()
        return float((written(example) - expected).abs().max())


def run(argv: List[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.format == "export" and not args.output.endswith(".pt2"):
        raise UsageError(f"torch.export programs are saved as .pt2 files; got --output {args.output}")
    cfg = load_config(args.cfg_file, args.opts)
    try:
        model = classifier(cfg, args.weights)
    except ValueError as error:
        raise UsageError(str(error)) from error
    size = cfg.DATA.TEST_CROP_SIZE
    example = torch.randn(2, cfg.DATA.INPUT_CHANNEL_NUM[0], cfg.DATA.NUM_FRAMES, size, size)
    difference = export(model, example, args.format, args.output)
    logger.info("wrote %s (%s); largest logit difference to the eager model: %.2e", args.output, args.format,
                difference)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    return run_tool(run, argv)


if __name__ == "__main__":
    sys.exit(main())
