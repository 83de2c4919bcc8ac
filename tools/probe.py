#!/usr/bin/env python3
"""Probe a checkpoint's frozen encoder, or a randomly initialized one, on labelled lists:

    python tools/probe.py --cfg CONFIG [--checkpoint CK] [--eval-split test] \
        [--probes knn linear attentive] [--json out.json] [KEY VALUE ...]

CONFIG builds the model whose encoder is probed: a pretraining recipe, or a classifier
of the same encoder (a pretraining checkpoint's encoder is then loaded by name, as
fine-tuning loads it, and the reverse). Without --checkpoint the weights are its random
initialization (seeded by RNG_SEED), the baseline a pretraining gain is measured against.
Each item of PROBE.TRAIN_SPLIT and of --eval-split under PROBE.PATH_TO_DATA_DIR (else
DATA.PATH_TO_DATA_DIR) is encoded once, as one centre view; then k-NN (PROBE.KNN_*), a
linear probe on the pooled features (PROBE.LINEAR_*) and an attentive probe on the tokens
(PROBE.ATTENTIVE_*) give top-1 on --eval-split. Prints a table with chance (100 / the
number of classes, as in test_results.json) and the majority baseline (the share of
--eval-split's most frequent class); --json writes {"chance": .., "majority_baseline": ..,
"knn": .., "linear": ..,
"attentive": ..} in percent.
"""

import argparse
import json
import logging
import os
import sys
from typing import Dict, List, Optional

import torch
from torch import nn

from slowmask.config import load_config
from slowmask import checkpoint
from slowmask.engine.evaluate import chance_top1, majority_baseline
from slowmask.engine.devices import select_device
from slowmask.engine.probe import build_probe_clips, build_probes, encode_probe_set, probe_scores
from slowmask.methods import build_model
from slowmask.utils.errors import DataError, SlowmaskError, UsageError, run_tool
from slowmask.utils.logging import current_log_file, setup_logging
from slowmask.utils.tool_args import check_output_file, check_output_folder, parse_with_overrides, tool_parser

logger = logging.getLogger("slowmask.tools.probe")

PROBES = ("knn", "linear", "attentive")
# Probes read the last block's tokens (features.encode), never a classifier head or a
# pretraining head, nor (MViT) the final norm: a checkpoint's tensors of those are not loaded.
UNREAD_BY_PROBES = ("head.", *checkpoint.PRETRAINING_ONLY)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument("--cfg", dest="cfg_file", required=True, help="yaml config of the model")
    parser.add_argument("--checkpoint", default="", help="weights to probe (default: random initialization)")
    parser.add_argument("--eval-split", default="test", help="split scored (default test)")
    parser.add_argument("--probes", nargs="+", default=list(PROBES), help=f"probes to run, of {' '.join(PROBES)}")
    parser.add_argument("--json", default="", help="write the figures to this file")
    parser.add_argument("--out", default="", help="folder of the log (default: none)")
    args, args.overrides = parse_with_overrides(parser, argv)
    # --probes takes every word up to the next option: KEY VALUE overrides right after its
    # names belong to the overrides.
    names = next((i for i, word in enumerate(args.probes) if word not in PROBES), len(args.probes))
    args.probes, args.overrides = args.probes[:names], args.probes[names:] + args.overrides
    if not args.probes:
        parser.error(f"--probes needs at least one of {', '.join(PROBES)}")
    return args


def load_encoder_weights(path: str, model: nn.Module) -> None:
    """The weights of the checkpoint at `path` into `model`: all of them when `model` is
    the checkpoint's own; else (a pretraining checkpoint probed through a classifier
    config, or the reverse) by name as fine-tuning loads them, since the probes read only
    the encoder. An encoder tensor the checkpoint lacks keeps its random initialization,
    which changes the features probed: a WARNING names it."""
    try:
        checkpoint.load_weights(path, model)
        return
    except checkpoint.WeightsMismatchError:
        logger.info("loading the encoder weights of %s by name: it was written by another model than this "
                    "config's (pretraining and classifier models share the encoder's names)", path)
    report = checkpoint.load_pretrained(path, model, drop=UNREAD_BY_PROBES)
    random = [name for name in report.new if not name.startswith((*UNREAD_BY_PROBES, "norm."))]
    if random:
        logger.warning("%d encoder tensor(s) are not in %s and keep their random initialization, which the probes "
                       "read: %s; probe with the config the checkpoint was trained with to read its own encoder",
                       len(random), path, ", ".join(random))


def run_probes(cfg, checkpoint_path: str, eval_split: str, names: List[str]) -> Dict[str, float]:
    """{"chance": .., "majority_baseline": .., probe: top-1 %} of the model `cfg` builds,
    with `checkpoint_path`'s weights or (when "") its seeded random initialization."""
    torch.manual_seed(cfg.RNG_SEED)
    model = build_model(cfg)
    if checkpoint_path:
        load_encoder_weights(checkpoint_path, model)
    device = select_device(cfg)
    model.to(device)
    probes = build_probes(cfg, linear=True, attentive=True)
    encode = dict(device=device, batch_size=cfg.PROBE.BATCH_SIZE, keep_tokens="attentive" in names,
                  num_workers=cfg.DATA_LOADER.NUM_WORKERS)
    train_clips, train_labels = build_probe_clips(cfg, cfg.PROBE.TRAIN_SPLIT, cfg.PROBE.TRAIN_MAX_ITEMS)
    eval_clips, eval_labels = build_probe_clips(cfg, eval_split)
    train = encode_probe_set(model, train_clips, train_labels, **encode)
    query = encode_probe_set(model, eval_clips, eval_labels, **encode)
    num_classes = cfg.PROBE.NUM_CLASSES or int(train.labels.max()) + 1
    logger.info("probing %s on %d %s and %d %s items, %d classes",
                checkpoint_path or "random initialization", len(train.labels), cfg.PROBE.TRAIN_SPLIT,
                len(query.labels), eval_split, num_classes)
    scores = probe_scores(train, query, num_classes, {name: probes[name] for name in names})
    return {"chance": chance_top1(num_classes), "majority_baseline": majority_baseline(query.labels), **scores}


# The rows of the table below the probes, with their names there.
BASELINES = {"chance": "chance", "majority_baseline": "majority"}


def table(scores: Dict[str, float]) -> str:
    """A two-column table: probe, top-1 %; chance and the majority baseline last."""
    rows = [(name, value) for name, value in scores.items() if name not in BASELINES]
    rows += [(shown, scores[key]) for key, shown in BASELINES.items() if key in scores]
    return "\n".join([f"{'probe':<10} {'top-1 %':>8}"] + [f"{name:<10} {value:>8.2f}" for name, value in rows])


def run(argv: List[str]) -> int:
    args = parse_args(argv)
    if args.json:  # its folder is created
        check_output_file(args.json, "--json", folder_may_be_missing=True)
    check_output_folder(args.out, "--out")
    cfg = load_config(args.cfg_file, list(args.overrides))
    if args.out:
        setup_logging(args.out)
    else:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        scores = run_probes(cfg, args.checkpoint, args.eval_split, args.probes)
    except (FileNotFoundError, ValueError) as error:  # a split's list or files (ProbeError and ConfigError pass)
        if isinstance(error, SlowmaskError):
            raise
        raise DataError(str(error)) from error
    except TypeError as error:  # a model that cannot give features (see encoder_tokens)
        raise UsageError(str(error)) from error
    sys.stdout.write(table(scores) + "\n")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({name: round(value, 4) for name, value in scores.items()}, f, indent=1)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    return run_tool(run, argv, current_log_file)


if __name__ == "__main__":
    sys.exit(main())
