#!/usr/bin/env python3
r"""Encoder features of videos and images, as .npy files:

    python tools/extract_features.py --cfg CONFIG --checkpoint CK --videos LIST_OR_FOLDER --out DIR \
        [--per-token] [--pooling mean] [--batch-size 8] [--overwrite] [KEY VALUE ...]

--videos is a list file, one path per line (a "path label" list such as train.csv works
too), or a folder: its videos and images at all depths. A relative path in a list is read
from the list's folder (one that exists only from the working directory is taken from
there, with a warning); with DATA.PATH_PREFIX set it is joined to the prefix instead.

Each input gives one clip: a video's central window (DATA.NUM_FRAMES frames
DATA.SAMPLING_RATE apart) and central DATA.TRAIN_CROP_SIZE crop; an image repeated over
the frames. Written into DIR: features.npy (one pooled row per input, list order),
index.csv (row, path), failed.txt, store.json (the checkpoint and settings that made the
features) and per input pooled/<key>.npy (tokens/<key>.npy with --per-token).
--pooling (default PROBE.POOLING, "mean") chooses the pooled row: "mean" of the last block's
grid tokens, "cls" its class token, "mean_last_k" / "concat_last_k" the last PROBE.POOL_LAST_K
blocks' tokens, each layer-normalized, averaged or concatenated (then their mean); store.json
names it ("pooling": e.g. "mean_last_4") and tokens/ holds the tokens it reads.

A second run with the same checkpoint and config encodes only the inputs not done yet; one
with another checkpoint or config is refused (status 6) unless --overwrite deletes the
earlier features. One run at a time writes into DIR (a second is refused, status 6).
Exit status 3 when an input could not be read (the others' features are written).
"""

import argparse
import logging
import os
import sys
from typing import Any, Dict

import torch
from fvcore.common.config import CfgNode
from iopath.common.file_io import g_pathmgr

from slowmask.config import load_config
from slowmask.data import EvalTransform, build_clip_sampler, build_video_opener
from slowmask import checkpoint
from slowmask.checkpoint import CheckpointError
from slowmask.engine.devices import select_device
from slowmask.engine.probe import clip_shape
from slowmask.features import (
    POOLINGS, MediaClips, Producer, WeightsFile, hold_store, media_inputs, open_store, pooling_label,
)
from slowmask.features.extract import ExtractReport, extract_features
from slowmask.features.pooling import check_pooling_fits
from slowmask.methods import build_model
from slowmask.utils.errors import DataError, UsageError, run_tool
from slowmask.utils.logging import fresh_log_file, setup_logging
from slowmask.utils.tool_args import parse_with_overrides, tool_parser

logger = logging.getLogger("slowmask.tools.extract_features")

# Config keys that cannot change a feature: where and how fast a run works, training-only
# settings, where the list's paths live. Every other key is recorded in store.json.
RUN_ONLY_KEYS = (
    "NUM_GPUS", "NUM_SHARDS", "SHARD_ID", "OUTPUT_DIR", "RNG_SEED", "LOG_PERIOD", "LOG_MODEL_INFO", "DIST_BACKEND",
    "DIST_RENDEZVOUS_TIMEOUT_S", "DIST_COLLECTIVE_TIMEOUT_S", "TRAIN", "SOLVER", "AUG", "MIXUP", "TEST", "TEACHER",
    "DATA_LOADER", "TENSORBOARD", "PROBE", "MULTI_DATASET", "DATA.PATH_TO_DATA_DIR", "DATA.PATH_PREFIX",
    "DATA.PATH_LABEL_SEPARATOR", "DATA.CUSTOM_MODULES",
)
# Unreadable inputs named in the final line; failed.txt and the log have them all.
NAMED_FAILURES = 3


def parse_args(argv=None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument("--cfg", dest="cfg_file", required=True, help="yaml config of the model")
    parser.add_argument("--checkpoint", required=True, help="weights of the model (a slowmask/PySlowFast checkpoint)")
    parser.add_argument("--videos", required=True,
                        help="list of videos / images, one path per line (relative paths from the list's folder), "
                             "or a folder of them")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--per-token", action="store_true", help="also write every grid token's features")
    parser.add_argument("--pooling", choices=list(POOLINGS), default=None,
                        help="features of each input's row (default PROBE.POOLING, mean: of the last block's tokens)")
    parser.add_argument("--batch-size", type=int, default=8, help="inputs per forward pass")
    parser.add_argument("--overwrite", action="store_true",
                        help="delete the features an earlier run left in --out and encode every input again")
    args, args.overrides = parse_with_overrides(parser, argv)  # the rest: KEY VALUE config overrides
    return args


def check_args(args: argparse.Namespace) -> None:
    """Refuse arguments that cannot work before anything slow (or written) happens."""
    if args.batch_size < 1:
        raise UsageError(f"--batch-size {args.batch_size}: give a positive number of inputs per forward pass")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UsageError(f"--out {args.out} is a file, not a folder: give a folder for the features (new or earlier)")
    if not g_pathmgr.exists(args.checkpoint):
        raise CheckpointError(f"checkpoint not found: {args.checkpoint}")
    if g_pathmgr.isdir(args.checkpoint):
        newest = checkpoint.last_checkpoint(args.checkpoint) or checkpoint.last_checkpoint(
            os.path.dirname(os.path.normpath(args.checkpoint)))
        hint = f", e.g. its newest, {newest}" if newest else ""
        raise CheckpointError(f"--checkpoint {args.checkpoint} is a folder, not a checkpoint file: name a file{hint}")


def feature_settings(cfg: CfgNode) -> Dict[str, Any]:
    """{KEY: value} of the config keys that can change a feature (all but RUN_ONLY_KEYS),
    and "pooling": which the rows are (PROBE.POOLING with PROBE.POOL_LAST_K)."""
    settings: Dict[str, Any] = {"pooling": pooling_label(cfg.PROBE.POOLING, cfg.PROBE.POOL_LAST_K)}
    pending = [("", cfg)]
    while pending:
        prefix, node = pending.pop()
        for key, value in node.items():
            name = prefix + key
            if name in RUN_ONLY_KEYS:
                continue
            if isinstance(value, CfgNode):
                pending.append((name + ".", value))
            else:
                settings[name] = value
    return settings


def media_dataset(cfg: CfgNode, source: str) -> MediaClips:
    crop = cfg.DATA.TRAIN_CROP_SIZE  # the model's input size
    try:
        paths = media_inputs(source, cfg.DATA.PATH_PREFIX, cfg.DATA.PATH_LABEL_SEPARATOR)
    except (FileNotFoundError, ValueError) as error:
        raise DataError(str(error)) from error
    return MediaClips(
        paths,
        open_video=build_video_opener(cfg),
        sampler=build_clip_sampler(cfg, "val"),
        transform=EvalTransform(crop, crop, cfg.DATA.MEAN, cfg.DATA.STD),
        num_frames=cfg.DATA.NUM_FRAMES,
    )


def check_all_read(report: ExtractReport, total: int, out_dir: str) -> None:
    """Raise DataError naming the inputs that could not be read, if any."""
    if not report.failed:
        return
    named = ", ".join(list(report.failed)[:NAMED_FAILURES])
    more = f" and {len(report.failed) - NAMED_FAILURES} more" if len(report.failed) > NAMED_FAILURES else ""
    first_reason = next(iter(report.failed.values()))
    written = (f"the features of the other {report.rows} in {os.path.join(out_dir, 'features.npy')}" if report.rows
               else "no input has features")
    raise DataError(
        f"{len(report.failed)} of {total} inputs could not be read ({named}{more}; first: {first_reason}); all are "
        f"in {os.path.join(out_dir, 'failed.txt')}, {written}"
    )


def run(argv) -> int:
    args = parse_args(argv)
    setup_logging(None)  # the console alone until --out is held: a refused run writes nothing there
    check_args(args)
    with hold_store(args.out):
        setup_logging(args.out)
        pooling = ["PROBE.POOLING", args.pooling] if args.pooling else []
        cfg = load_config(args.cfg_file, list(args.overrides) + pooling)
        producer = Producer(WeightsFile.of(args.checkpoint), feature_settings(cfg))
        dataset = media_dataset(cfg, args.videos)
        model = build_model(cfg)
        checkpoint.load_weights(args.checkpoint, model)
        check_pooling_fits(model, cfg.PROBE.POOLING, cfg.PROBE.POOL_LAST_K, clip_shape(cfg))
        store = open_store(args.out, producer, args.per_token, args.overwrite)
        try:
            with torch.inference_mode():
                report = extract_features(model, dataset, store, select_device(cfg), batch_size=args.batch_size,
                                          num_workers=cfg.DATA_LOADER.NUM_WORKERS, pooling=cfg.PROBE.POOLING,
                                          last_k=cfg.PROBE.POOL_LAST_K)
        except TypeError as error:  # a model that cannot give features (see encoder_tokens)
            raise UsageError(str(error)) from error
        logger.info("encoded %d inputs now, %d earlier; %d rows in %s/features.npy; %d failed (failed.txt)",
                    report.extracted, report.skipped, report.rows, args.out, len(report.failed))
        check_all_read(report, len(dataset), args.out)
    return 0


def main(argv=None) -> int:
    return run_tool(run, argv, fresh_log_file())


if __name__ == "__main__":
    sys.exit(main())
