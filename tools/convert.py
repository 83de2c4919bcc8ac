#!/usr/bin/env python3
"""Convert a published checkpoint into a slowmask checkpoint and the config of its model.

    python tools/convert.py SRC --output OUT.pyth [--cfg-out OUT.yaml] [--base RECIPE.yaml]
        [--frames N] [--crop S] [--num-heads H] [--tubelet K]

SRC: an official VideoMAE / VideoMAE V2 .pth, a Hugging Face VideoMAE directory
(config.json + model.safetensors), a timm image ViT's weights (inflated to video), or a
PySlowFast .pyth, or a sharded run's checkpoint folder (TRAIN.SHARDING: consolidated into one
.pyth with its optimizer, epoch and config, as a 1-process run would have written it); the
format is detected (slowmask/checkpoint/convert/). The report lists
every source tensor used or left over and every model tensor filled or left at its
initialization (warnings). OUT.pyth holds the converted tensors only; OUT.yaml the model
keys over --base (a fine-tuning recipe: its data, solver and classes), with
TRAIN.CHECKPOINT_FILE_PATH OUT.pyth, so that

    python tools/run_net.py --cfg OUT.yaml DATA.PATH_TO_DATA_DIR ...

fine-tunes it. --frames / --crop: the clips a .pth was trained on (it does not say; default
16 x 224); --num-heads: its heads (default: the published ViT's of its width); --tubelet:
frames per patch of an inflated image model (default 2).
"""

import argparse
import logging
import os
import sys
import tempfile
from typing import Any, Dict, List, Optional

import yaml
from torch import Tensor, nn

from slowmask.checkpoint import (
    CheckpointError,
    consolidate_checkpoint,
    is_sharded_checkpoint,
    save_checkpoint,
    state_diff,
)
from slowmask.checkpoint.convert import Converted, convert_checkpoint, leave_out_other_classifier
from slowmask.config import load_config
from slowmask.methods import build_model
from slowmask.utils.errors import UsageError, run_tool
from slowmask.utils.tool_args import check_output_file, parse_with_overrides, positive_int, tool_parser

logger = logging.getLogger("convert")


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument("source", help="checkpoint file or Hugging Face directory to convert")
    parser.add_argument("--output", required=True, help="slowmask checkpoint to write (.pyth)")
    parser.add_argument("--cfg-out", default="", help="yaml config of the converted model to write")
    parser.add_argument("--base", default="", help="recipe the written config starts from (_BASE_)")
    parser.add_argument("--frames", type=positive_int, help="frames per clip the source was trained on")
    parser.add_argument("--crop", type=positive_int, help="crop size the source was trained on")
    parser.add_argument("--num-heads", type=positive_int, help="attention heads of the source")
    parser.add_argument("--tubelet", type=positive_int, help="frames per patch when inflating an image model")
    args, args.opts = parse_with_overrides(parser, argv)  # the rest: KEY VALUE config overrides
    return args


def hints_of(args: argparse.Namespace) -> Dict[str, Any]:
    given = {"num_frames": args.frames, "image_size": args.crop, "num_heads": args.num_heads, "tubelet": args.tubelet}
    return {key: value for key, value in given.items() if value is not None}


def model_config(converted: Converted, base: str) -> Dict[str, Any]:
    """The converted config keys the written yaml sets over `base`: without MODEL.NUM_CLASSES
    when a base recipe chooses the classes."""
    keys = dict(converted.config)
    if base:
        keys.pop("MODEL.NUM_CLASSES", None)
    return keys


def load_model_config(converted: Converted, base: str, keys: Dict[str, Any], opts: List[str]):
    """The config the model is built from: `base` (or the run's own config a .pyth kept)
    with `keys` and the command line's overrides."""
    flat = [item for key, value in keys.items() for item in (key, str(value))] + list(opts)
    if base or not converted.cfg_yaml:
        return load_config(base or None, flat)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as stored:
        stored.write(converted.cfg_yaml)
        stored.flush()
        return load_config(stored.name, flat)


def fitted_state(converted: Converted, model: nn.Module) -> Dict[str, Tensor]:
    """The converted tensors checked against `model`: a classifier of another number of
    classes is left out (a warning); any other mismatch is refused."""
    own = model.state_dict()
    leave_out_other_classifier(converted, own)
    diff = state_diff(converted.state, own)
    diff.missing = []  # the tensors the conversion leaves at their initialization: in the report
    if diff:
        raise CheckpointError(f"{converted.report.source}: the converted tensors do not fit the model of the "
                              f"config:\n{diff.summary()}")
    return converted.state


class ConvertedWeights(nn.Module):
    """The converted tensors, written as save_checkpoint writes a model: its state dict is them."""

    def __init__(self, state: Dict[str, Tensor]) -> None:
        super().__init__()
        self.converted = state

    def state_dict(self, *args: Any, **kwargs: Any) -> Dict[str, Tensor]:
        return dict(self.converted)


def write_yaml(path: str, keys: Dict[str, Any], base: str, stored_yaml: str) -> None:
    """The config as nested sections over `_BASE_` (or over `stored_yaml`, the config a .pyth
    kept), through a temporary file renamed into place."""
    tree: Dict[str, Any] = {"_BASE_": os.path.abspath(base)} if base else dict(yaml.safe_load(stored_yaml) or {})
    for key, value in keys.items():
        *sections, leaf = key.split(".")
        node = tree
        for section in sections:
            node = node.setdefault(section, {})
        node[leaf] = value
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        with open(temporary, "w") as f:
            f.write("# The model of a converted checkpoint (tools/convert.py); add the data and solver keys.\n")
            yaml.safe_dump(tree, f, sort_keys=False)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def run(argv: List[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    check_output_file(args.output, "--output")
    if not args.output.endswith(".pyth"):
        raise UsageError(f"--output {args.output}: slowmask checkpoints are .pyth files; name one")
    if args.cfg_out:
        check_output_file(args.cfg_out, "--cfg-out")
    if is_sharded_checkpoint(args.source):
        return consolidated(args)
    converted = convert_checkpoint(args.source, hints_of(args))
    keys = model_config(converted, args.base)
    model = build_model(load_model_config(converted, args.base, keys, args.opts))
    state = fitted_state(converted, model)
    converted.report.compare(list(model.state_dict())).log()
    cfg_yaml = yaml.safe_dump(keys, sort_keys=False)
    save_checkpoint(args.output, ConvertedWeights(state), None, 0, converted.cfg_yaml or cfg_yaml)
    if args.cfg_out:
        keys.update({"TRAIN.CHECKPOINT_FILE_PATH": os.path.abspath(args.output), "TRAIN.CHECKPOINT_EPOCH_RESET": True})
        write_yaml(args.cfg_out, keys, args.base, converted.cfg_yaml)
        logger.info("wrote %s, the config of the converted model: python tools/run_net.py --cfg %s", args.cfg_out,
                    args.cfg_out)
    return 0


def consolidated(args: argparse.Namespace) -> int:
    """A sharded run's checkpoint folder written as one .pyth: nothing to convert, its own
    config inside (--cfg-out and the model options have nothing to describe)."""
    if args.cfg_out:
        raise UsageError(f"--cfg-out: {args.source} is a sharded slowmask checkpoint; the consolidated file keeps "
                         "its run's config (cfg): drop --cfg-out and fine-tune with TRAIN.CHECKPOINT_FILE_PATH")
    consolidate_checkpoint(args.source, args.output)
    logger.info("wrote %s, the sharded checkpoint %s consolidated", args.output, args.source)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    return run_tool(run, argv)


if __name__ == "__main__":
    sys.exit(main())
