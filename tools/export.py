#!/usr/bin/env python3
"""Write a classifier for inference, as a torch.export program (default) or TorchScript;
or a ViT as a Hugging Face VideoMAE directory.

    python tools/export.py --cfg configs/k400_MViT_S_FT.yaml --weights checkpoint.pyth \\
        --output mvit_s.pt2 [--format export|torchscript|hf] [KEY VALUE ...]

The model is exported at a batch of two clips of DATA.NUM_FRAMES x DATA.TEST_CROP_SIZE^2
in eval mode (any batch size runs afterwards; the clip size is fixed) and checked against
the eager model on it. Load the result with `torch.export.load(path).module()` (export, a
.pt2 file) or `torch.jit.load(path)` (torchscript); either maps (B, 3, T, S, S) normalized
clips to (B, MODEL.NUM_CLASSES) logits. The file appears only once complete.

--format hf writes the new folder --output (config.json, model.safetensors) that
transformers' AutoModelForVideoClassification (a classifier) or AutoModel (the encoder of
a pretraining config) loads as VideoMAE: ViTs with VideoMAE's stem (no class token, its
fixed 1-D sine table, mean pooling: models converted from VideoMAE); an MViT, or another
stem, is refused in one line (checkpoint/convert/hf_videomae.py).
"""

import argparse
import logging
import os
import sys
import warnings
from typing import List, Optional

import torch
from fvcore.common.config import CfgNode
from torch import nn

from slowmask.config import load_config
from slowmask.checkpoint import load_weights
from slowmask.checkpoint.convert import ConversionError, export_hf_directory
from slowmask.methods import build_model
from slowmask.utils.errors import UsageError, run_tool
from slowmask.utils.tool_args import check_output_file, parse_with_overrides, tool_parser

logger = logging.getLogger("export")

FORMATS = ("export", "torchscript", "hf")


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument("--cfg", dest="cfg_file", required=True, help="yaml config file of the classifier")
    parser.add_argument("--weights", default="", help="checkpoint whose model_state to export (default: initialized)")
    parser.add_argument("--format", choices=FORMATS, default="export",
                        help="export: torch.export, a .pt2 file (default); torchscript: torch.jit.trace; "
                             "hf: a Hugging Face VideoMAE folder")
    parser.add_argument("--output", required=True, help="file to write (.pt2 for --format export)")
    args, args.opts = parse_with_overrides(parser, argv)  # the rest: KEY VALUE config overrides
    return args


def check_output(output: str, fmt: str) -> None:
    """Refuse, before anything is built, an --output that cannot be written as `fmt`."""
    if fmt == "hf":
        if os.path.exists(output) and not (os.path.isdir(output) and not os.listdir(output)):
            raise UsageError(f"--format hf writes a new folder; --output {output} exists: name a new folder")
        return
    check_output_file(output, "--output")
    if fmt == "export" and not output.endswith(".pt2"):
        raise UsageError(f"torch.export programs are saved as .pt2 files; got --output {output}: name a .pt2 file, "
                         "or pass --format torchscript")


def classifier(cfg: CfgNode, weights: str) -> nn.Module:
    """The eval-mode classifier of `cfg`, with the model_state of `weights` when given."""
    if cfg.MASK.ENABLE:
        raise ValueError(
            f"export writes classifiers (model(x) -> logits); this config pretrains "
            f"(MASK.ENABLE True, MODEL.MODEL_NAME {cfg.MODEL.MODEL_NAME}): use a fine-tuning config"
        )
    model = build_model(cfg)
    if weights:
        load_weights(weights, model)
    return model.eval()


def write_program(model: nn.Module, example: torch.Tensor, fmt: str, path: str) -> nn.Module:
    """Write `model` traced at `example` to `path`; returns the program read back."""
    if fmt == "export":
        batch = torch.export.Dim("batch", min=1)
        program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
        torch.export.save(program, path)
        return torch.export.load(path).module()
    # The user chose TorchScript: its deprecation notice is no news. A trace records shapes
    # as constants (TracerWarning per shape read): the fixed clip size the docstring states.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=FutureWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        program = torch.jit.trace(model, example)
        program.save(path)
        return torch.jit.load(path)


def export(model: nn.Module, example: torch.Tensor, fmt: str, output: str) -> float:
    """Write `model` traced at `example` to `output` (through a temporary file renamed
    into place: a failure leaves nothing); returns the largest difference between the
    written program's and the eager model's logits on `example`."""
    root, extension = os.path.splitext(output)  # torch.export reads and writes only *.pt2
    temporary = f"{root}.tmp-{os.getpid()}{extension}"
    try:
        with torch.no_grad():
            expected = model(example)
            written = write_program(model, example, fmt, temporary)
            difference = float((written(example) - expected).abs().max())
        os.replace(temporary, output)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return difference


def run(argv: List[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    check_output(args.output, args.format)
    cfg = load_config(args.cfg_file, args.opts)
    if args.format == "hf":
        return export_hf(cfg, args.weights, args.output)
    try:
        model = classifier(cfg, args.weights)
    except ValueError as error:
        raise UsageError(str(error)) from error
    size = cfg.DATA.TEST_CROP_SIZE
    example = torch.randn(2, cfg.DATA.INPUT_CHANNEL_NUM[0], cfg.DATA.NUM_FRAMES, size, size)
    difference = export(model, example, args.format, args.output)
    logger.info("wrote %s (%s, clips of %s; any batch size); largest logit difference to the eager model: %.2e",
                args.output, args.format, " x ".join(map(str, example.shape[1:])), difference)
    return 0


def export_hf(cfg: CfgNode, weights: str, output: str) -> int:
    """Write the ViT of `cfg` (with `weights`) as a Hugging Face VideoMAE folder."""
    pools = cfg.MVIT.POOL_Q_STRIDE or cfg.MVIT.POOL_KV_STRIDE or cfg.MVIT.POOL_KV_STRIDE_ADAPTIVE
    if pools or cfg.MVIT.REL_POS_SPATIAL or cfg.MVIT.REL_POS_TEMPORAL:
        raise UsageError("--format hf writes ViTs as transformers' VideoMAE, and transformers has no MViT: this "
                         "config pools its attention (MVIT.POOL_*) or has relative positions (MVIT.REL_POS_*); "
                         "export it with --format export or torchscript")
    model = build_model(cfg)
    if weights:
        load_weights(weights, model)
    try:
        left_out = export_hf_directory(model.eval(), output)
    except ConversionError as error:
        raise UsageError(f"--format hf: {error}") from error
    if left_out:
        logger.warning("the encoder is written alone; left out: %s", ", ".join(left_out))
    logger.info("wrote %s: load it with transformers' %s.from_pretrained", output,
                "AutoModel" if cfg.MASK.ENABLE else "AutoModelForVideoClassification")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    return run_tool(run, argv)


if __name__ == "__main__":
    sys.exit(main())
