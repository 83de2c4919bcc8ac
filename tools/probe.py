#!/usr/bin/env python3
"""Probe a checkpoint's frozen encoder, or a randomly initialized one, on labelled lists:

    python tools/probe.py --cfg CONFIG [--checkpoint CK] [--eval-split test] \
        [--probes knn linear attentive] [--pooling mean] [--json out.json] [KEY VALUE ...]
    python tools/probe.py --cfg CONFIG --pixels --probes knn linear [--json out.json] [KEY VALUE ...]

CONFIG builds the model whose encoder is probed: a pretraining recipe, or a classifier
of the same encoder (a pretraining checkpoint's encoder is then loaded by name, as
fine-tuning loads it, and the reverse). Without --checkpoint the weights are its random
initialization (seeded by RNG_SEED), the baseline a pretraining gain is measured against.
Each item of PROBE.TRAIN_SPLIT and of --eval-split under PROBE.PATH_TO_DATA_DIR (else
DATA.PATH_TO_DATA_DIR) is encoded once: a labelled item as one centre view, an item of
--eval-split as PROBE.NUM_ENSEMBLE_VIEWS clips x PROBE.NUM_SPATIAL_CROPS crops (one centre
view by default), each probe's class scores averaged over an item's views. --pooling
(PROBE.POOLING: mean, cls, mean_last_k, concat_last_k) chooses the features read. Then k-NN
(PROBE.KNN_*), a linear probe on the pooled features (PROBE.LINEAR_*; with a grid of
PROBE.LINEAR_L2S, its penalty chosen by cross-validation on the labelled set) and an attentive
probe on the tokens (PROBE.ATTENTIVE_*; V-JEPA 2's protocol: PROBE.ATTENTIVE_POOLER blocks
and a grid of PROBE.ATTENTIVE_LRS x ATTENTIVE_WEIGHT_DECAYS heads trained in one pass, the
best reported with its settings) give top-1 on --eval-split. Prints a table with chance
(100 / the number of classes, as in test_results.json) and the majority baseline (the share
of --eval-split's most frequent class); --json writes {"chance": .., "majority_baseline": ..,
"knn": .., "linear": .., "attentive": ..} in percent, "pooling" (e.g. "mean_last_4"),
"views" ([clips, crops]), "<probe>_best" (the settings of a probe's best head, or of its one
head when chosen, e.g. {"l2": 0.001}) and, for a probe of several heads, "<probe>_heads"
([{settings.., "top1": ..}]).

--pixels probes no encoder but the pixels it would read: each view as CONFIG's loader gives
it (DATA.TRAIN_CROP_SIZE, normalized by DATA.MEAN and DATA.STD), flattened into one feature
vector ("pooling": "pixels"). The baseline that frozen features are compared with.
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
from slowmask.engine.probe import (
    ProbeOutcome, build_probe_clips, build_probes, clip_shape, encode_probe_set, item_labels, probe_encoding,
    probe_outcomes, probe_views,
)
from slowmask.features.pooling import DEFAULT_POOLING, POOLINGS, check_pooling_fits, pooling_label
from slowmask.methods import build_model
from slowmask.utils.errors import DataError, SlowmaskError, UsageError, run_tool
from slowmask.utils.logging import fresh_log_file, setup_logging
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
    parser.add_argument("--pooling", choices=list(POOLINGS), default=None,
                        help="features probed (default PROBE.POOLING, mean: the mean of the last block's tokens)")
    parser.add_argument("--pixels", action="store_true",
                        help="probe the views' pixels instead of an encoder (the raw-pixel baseline)")
    parser.add_argument("--json", default="", help="write the figures to this file")
    parser.add_argument("--out", default="", help="folder of the log (default: none)")
    args, args.overrides = parse_with_overrides(parser, argv)
    # --probes takes every word up to the next option: KEY VALUE overrides right after its
    # names belong to the overrides.
    names = next((i for i, word in enumerate(args.probes) if word not in PROBES), len(args.probes))
    args.probes, args.overrides = args.probes[:names], args.probes[names:] + args.overrides
    if not args.probes:
        parser.error(f"--probes needs at least one of {', '.join(PROBES)}")
    if args.pixels and (args.checkpoint or args.pooling):
        parser.error("--pixels probes the views' pixels: it takes neither --checkpoint nor --pooling")
    return args


class Pixels(nn.Module):
    """The raw-pixel baseline as an encoder: (B, 3, T, H, W) views -> (B, 1, 3*T*H*W), one
    token holding every pixel (features.encode reads `forward_features`; its mean is the
    flattened view)."""

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)[:, None]


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


def run_probes(cfg, checkpoint_path: str, eval_split: str, names: List[str], pixels: bool = False,
               ) -> Dict[str, ProbeOutcome]:
    """{"chance": .., "majority_baseline": .., probe: ..} as ProbeOutcomes, of the model
    `cfg` builds with `checkpoint_path`'s weights or (when "") its seeded random
    initialization; with `pixels`, of the views' pixels."""
    probes = build_probes(cfg, linear=True, attentive=True)
    torch.manual_seed(cfg.RNG_SEED)
    model = Pixels() if pixels else build_model(cfg)
    if checkpoint_path:
        load_encoder_weights(checkpoint_path, model)
    check_pooling_fits(model, cfg.PROBE.POOLING, cfg.PROBE.POOL_LAST_K, clip_shape(cfg))
    device = select_device(cfg)
    model.to(device)
    encode = probe_encoding(cfg, device, keep_tokens="attentive" in names)
    train_clips, train_labels = build_probe_clips(cfg, cfg.PROBE.TRAIN_SPLIT, cfg.PROBE.TRAIN_MAX_ITEMS)
    eval_clips, eval_labels = build_probe_clips(cfg, eval_split, views=probe_views(cfg))
    train = encode_probe_set(model, train_clips, train_labels, **encode)
    query = encode_probe_set(model, eval_clips, eval_labels, **encode)
    num_classes = cfg.PROBE.NUM_CLASSES or int(train.labels.max()) + 1
    logger.info("probing %s (%s features) on %d %s items and %d %s views (%d x %d per item), %d classes",
                checkpoint_path or ("the pixels" if pixels else "random initialization"), read_label(cfg, pixels),
                len(train.labels), cfg.PROBE.TRAIN_SPLIT, len(query.labels), eval_split, *probe_views(cfg),
                num_classes)
    outcomes = probe_outcomes(train, query, num_classes, {name: probes[name] for name in names})
    baselines = {"chance": chance_top1(num_classes), "majority_baseline": majority_baseline(item_labels(query))}
    return {**{name: ProbeOutcome(value) for name, value in baselines.items()}, **outcomes}


# The rows of the table below the probes, with their names there.
BASELINES = {"chance": "chance", "majority_baseline": "majority"}


def table(outcomes: Dict[str, ProbeOutcome]) -> str:
    """A two-column table: probe, top-1 % (a probe of several heads: its best, named);
    chance and the majority baseline last."""
    rows = [(name, outcome) for name, outcome in outcomes.items() if name not in BASELINES]
    rows += [(shown, outcomes[key]) for key, shown in BASELINES.items() if key in outcomes]
    lines = [f"{'probe':<10} {'top-1 %':>8}"]
    for name, outcome in rows:
        note = outcome.best_head()
        lines.append(f"{name:<10} {outcome.top1:>8.2f}" + (f"  ({note})" if note else ""))
    return "\n".join(lines)


def read_label(cfg, pixels: bool) -> str:
    """What the probes read: "pixels", or the pooling's name ("mean", "concat_last_3")."""
    return "pixels" if pixels else pooling_label(cfg.PROBE.POOLING, cfg.PROBE.POOL_LAST_K)


def figures(outcomes: Dict[str, ProbeOutcome], cfg, pixels: bool = False) -> Dict[str, object]:
    """The --json dict: each figure in percent (4 decimals), what was read (the pooling or
    "pixels"), the views, the best head's settings and the heads of a probe of several."""
    found: Dict[str, object] = {name: round(outcome.top1, 4) for name, outcome in outcomes.items()}
    found["pooling"] = read_label(cfg, pixels)
    found["views"] = list(probe_views(cfg))
    for name, outcome in outcomes.items():
        if outcome.best:
            found[f"{name}_best"] = outcome.best
        if len(outcome.heads) > 1:
            found[f"{name}_heads"] = [{**settings, "top1": round(value, 4)} for settings, value in outcome.heads]
    return found


def run(argv: List[str]) -> int:
    args = parse_args(argv)
    if args.json:  # its folder is created
        check_output_file(args.json, "--json", folder_may_be_missing=True)
    check_output_folder(args.out, "--out")
    # The pixels are one token: the mean "pools" it whatever the config's pooling.
    pooling = DEFAULT_POOLING if args.pixels else args.pooling
    cfg = load_config(args.cfg_file, list(args.overrides) + (["PROBE.POOLING", pooling] if pooling else []))
    if args.out:
        setup_logging(args.out)
    else:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        outcomes = run_probes(cfg, args.checkpoint, args.eval_split, args.probes, args.pixels)
    except (FileNotFoundError, ValueError) as error:  # a split's list or files (ProbeError and ConfigError pass)
        if isinstance(error, SlowmaskError):
            raise
        raise DataError(str(error)) from error
    except TypeError as error:  # a model that cannot give features (encoder_tokens, features/pooling.py)
        raise UsageError(str(error)) from error
    sys.stdout.write(table(outcomes) + "\n")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(figures(outcomes, cfg, args.pixels), f, indent=1)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    return run_tool(run, argv, fresh_log_file())


if __name__ == "__main__":
    sys.exit(main())
