#!/usr/bin/env python3
"""Write a model for inference: a classifier or, with --encoder, the encoder alone, as a
torch.export program (default) or TorchScript; or the weights as safetensors.

    python tools/export.py --cfg configs/k400_MViT_S_FT.yaml --weights checkpoint.pyth \\
        --output mvit_s.pt2 [--format export|torchscript|pyth-safe] [--encoder] [KEY VALUE ...]

A program is exported at a batch of two clips of DATA.NUM_FRAMES x DATA.TEST_CROP_SIZE^2
in eval mode (any batch size runs afterwards; the clip size is fixed) and checked against
the eager model on it. Load it with `torch.export.load(path).module()` (export, a .pt2
file) or `torch.jit.load(path)` (torchscript). A classifier maps (B, 3, T, S, S)
normalized clips to (B, MODEL.NUM_CLASSES) logits; it needs a fine-tuning config.

--format pyth-safe writes the model_state of any model (pretraining or classifier) as a
safetensors file, with its epoch and config in the safetensors metadata and a CRC-32 of
each tensor (checkpoint/safetensors_file.py): no pickle, so nothing in it can run code when
read. TRAIN.CHECKPOINT_FILE_PATH, TEST.CHECKPOINT_FILE_PATH and the tools read it as a .pyth.

--encoder writes the encoder of any model (a pretraining config and checkpoint of any
method, or a fine-tuned classifier): (B, 3, T, S, S) normalized clips to (B, N, D) final
tokens, the N = t*h*w grid tokens in (t, h, w) order, without the class token: the tokens
tools/extract_features.py and the probes read (features/encode.py). The tensors that path
never reads (a classifier's head and final norm, a pretraining head or decoder) are left
out of the program and named in the log and the metadata.

Beside every export, OUTPUT.json holds what a user needs to feed it and read it
(features/export_metadata.py): mean, std, frames, sampling rate, crop, channel order,
the output's shape and meaning, the class names when DATA.PATH_TO_DATA_DIR holds a
classids.json, the config and weights it came from. Files appear only once complete.
"""

import argparse
import copy
import logging
import os
import sys
import warnings
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import torch
from fvcore.common.config import CfgNode
from torch import nn

from slowmask.checkpoint import load_weights, read_checkpoint, write_safetensors_checkpoint
from slowmask.config import load_config
from slowmask.features.encode import TokenEncoder, tokens_meaning, without_unused
from slowmask.features.export_metadata import class_names, input_description, metadata_path, write_metadata
from slowmask.methods import build_model
from slowmask.utils.errors import UsageError, run_tool
from slowmask.utils.output_files import remove_quietly
from slowmask.utils.tool_args import check_output_file, parse_with_overrides, tool_parser

logger = logging.getLogger("export")

# --format: programs (a classifier, or the encoder) and weights files.
PROGRAMS = ("export", "torchscript")
WEIGHTS = ("pyth-safe",)
FORMATS = PROGRAMS + WEIGHTS
# A traced program's example batch: two clips, so that the batch size is not taken for a constant 1.
EXAMPLE_BATCH = 2


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument("--cfg", dest="cfg_file", required=True, help="yaml config of the model")
    parser.add_argument("--weights", default="", help="checkpoint whose model_state to export (default: initialized)")
    parser.add_argument("--format", choices=FORMATS, default="export",
                        help="export: torch.export, a .pt2 file (default); torchscript: torch.jit.trace; "
                             "pyth-safe: the weights of any model as safetensors (no pickle)")
    parser.add_argument("--encoder", action="store_true",
                        help="export the encoder alone: clips -> (B, N, D) final tokens, no class token")
    parser.add_argument("--output", required=True, help="file to write (.pt2 for --format export)")
    args, args.opts = parse_with_overrides(parser, argv)  # the rest: KEY VALUE config overrides
    return args


def check_output(output: str, fmt: str, encoder: bool = False) -> None:
    """Refuse, before anything is built, an --output that cannot be written as `fmt`."""
    check_output_file(output, "--output")
    if encoder and fmt not in PROGRAMS:
        raise UsageError(f"--encoder writes a program: pass --format {' or '.join(PROGRAMS)}, not {fmt}")
    if fmt == "export" and not output.endswith(".pt2"):
        raise UsageError(f"torch.export programs are saved as .pt2 files; got --output {output}: name a .pt2 file, "
                         "or pass --format torchscript")


@dataclass
class Exportable:
    """A model to write, the checkpoint dict its weights came from ({} without), and its
    output's description for the metadata (all but the shape, which the writer finds)."""

    model: nn.Module
    checkpoint: Dict[str, Any]
    content: str
    output: Dict[str, Any]


def classifier(cfg: CfgNode, weights: str) -> Exportable:
    """The eval-mode classifier of `cfg`, with the model_state of `weights` when given."""
    if cfg.MASK.ENABLE:
        raise ValueError(
            f"export writes classifiers (model(x) -> logits); this config pretrains "
            f"(MASK.ENABLE True, MODEL.MODEL_NAME {cfg.MODEL.MODEL_NAME}): use a fine-tuning config, "
            "or pass --encoder to export its encoder"
        )
    model = build_model(cfg)
    checkpoint = load_weights(weights, model) if weights else {}
    names = class_names(cfg.DATA.PATH_TO_DATA_DIR, cfg.MODEL.NUM_CLASSES)
    output = {"layout": "B, classes", "meaning": "logits (before softmax) of the MODEL.NUM_CLASSES classes",
              "class_names": names}
    return Exportable(model.eval(), checkpoint, "classifier", output)


def any_model(cfg: CfgNode, weights: str) -> Exportable:
    """The model of `cfg` (a pretraining method or a classifier) with the model_state of
    `weights` when given: what --format pyth-safe writes."""
    model = build_model(cfg)
    checkpoint = load_weights(weights, model) if weights else {}
    output = {"meaning": f"the model_state (PySlowFast's names) of {cfg.MODEL.MODEL_NAME}, with epoch and cfg in "
                         "the safetensors metadata: TRAIN / TEST.CHECKPOINT_FILE_PATH and the tools read it"}
    return Exportable(model.eval(), checkpoint, "weights", output)


def encoder(cfg: CfgNode, weights: str, example: torch.Tensor) -> Exportable:
    """The eval-mode encoder of `cfg`'s model (any method, or a classifier) with the
    model_state of `weights` when given, without the tensors it never reads on `example`."""
    model = build_model(cfg)
    checkpoint = load_weights(weights, model) if weights else {}
    alone, unused = without_unused(TokenEncoder(copy.deepcopy(model)).eval(), example)
    left_out = [name[len("model."):] for name in unused]
    if left_out:
        logger.info("the encoder leaves out %d tensor(s) it never reads: %s", len(left_out), ", ".join(left_out))
    output = {"layout": "B, N, D", "meaning": tokens_meaning(model), "class_token": False, "left_out": left_out}
    return Exportable(alone, checkpoint, "encoder", output)


# Writers, one per --format: each writes `model` to `path` and returns what it found for the metadata.

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


def export(model: nn.Module, example: torch.Tensor, fmt: str, output: str) -> Dict[str, Any]:
    """Write `model` traced at `example` to `output` (through a temporary file renamed
    into place: a failure leaves nothing); returns the output's shape ("B" for the batch)
    and the largest difference between the written program's and the eager model's
    outputs on `example`."""
    root, extension = os.path.splitext(output)  # torch.export reads and writes only *.pt2
    temporary = f"{root}.tmp-{os.getpid()}{extension}"
    try:
        with torch.no_grad():
            expected = model(example)
            written = write_program(model, example, fmt, temporary)
            difference = float((written(example) - expected).abs().max())
        os.replace(temporary, output)
    finally:
        remove_quietly(temporary)
    return {"shape": ["B", *expected.shape[1:]], "largest_difference_to_eager": difference}


def write_weights(model: nn.Module, epoch: Optional[int], cfg: CfgNode, output: str) -> Dict[str, Any]:
    """Write `model`'s state as a safetensors checkpoint, checked by reading it back as
    every tool reads it (`read_checkpoint`: header and CRC-32s); returns its tensor count."""
    state = model.state_dict()
    write_safetensors_checkpoint(output, state, epoch, cfg.dump())
    try:
        read = read_checkpoint(output)["model_state"]
        if read.keys() != state.keys() or not all(torch.equal(read[name], state[name]) for name in state):
            raise RuntimeError(f"{output} does not read back as the model's weights")
    except BaseException:
        remove_quietly(output)
        raise
    return {"tensors": len(state)}


# The metadata.

def metadata(args: argparse.Namespace, cfg: CfgNode, exportable: Exportable, found: Dict[str, Any]) -> Dict[str, Any]:
    """The json written beside the export (see features/export_metadata.py)."""
    epoch = exportable.checkpoint.get("epoch")
    shape = {"shape": found["shape"]} if "shape" in found else {}
    return {
        "file": os.path.basename(args.output),
        "format": args.format,
        "content": exportable.content,
        "config": args.cfg_file,
        "overrides": list(args.opts),
        "model": cfg.MODEL.MODEL_NAME,
        "weights": args.weights or None,
        "epoch": None if epoch is None else int(epoch) + 1,  # 1-based, as the logs name it
        "input": input_description(cfg),
        "output": {**shape, **exportable.output},
        **{key: value for key, value in found.items() if key != "shape"},
    }


def exportable_of(args: argparse.Namespace, cfg: CfgNode, example: torch.Tensor) -> Exportable:
    """What the command line asks to write: the encoder, the weights, or the classifier."""
    if args.encoder:
        return encoder(cfg, args.weights, example)
    if args.format in WEIGHTS:
        return any_model(cfg, args.weights)
    return classifier(cfg, args.weights)


def run(argv: List[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    check_output(args.output, args.format, args.encoder)
    cfg = load_config(args.cfg_file, args.opts)
    size = cfg.DATA.TEST_CROP_SIZE
    example = torch.randn(EXAMPLE_BATCH, cfg.DATA.INPUT_CHANNEL_NUM[0], cfg.DATA.NUM_FRAMES, size, size)
    try:
        exportable = exportable_of(args, cfg, example)
    except ValueError as error:
        raise UsageError(str(error)) from error
    if args.format in WEIGHTS:
        found = write_weights(exportable.model, exportable.checkpoint.get("epoch"), cfg, args.output)
    else:
        found = export(exportable.model, example, args.format, args.output)
    try:
        write_metadata(metadata_path(args.output), metadata(args, cfg, exportable, found))
    except BaseException:  # an export without its metadata is not complete
        remove_quietly(args.output)
        raise
    if args.format in WEIGHTS:
        logger.info("wrote %s (%s, %d tensors, read back equal to the model) and %s", args.output, args.format,
                    found["tensors"], metadata_path(args.output))
        return 0
    logger.info("wrote %s (%s, clips of %s; any batch size) and %s; largest difference to the eager model: %.2e",
                args.output, args.format, " x ".join(map(str, example.shape[1:])), metadata_path(args.output),
                found["largest_difference_to_eager"])
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    return run_tool(run, argv)


if __name__ == "__main__":
    sys.exit(main())
