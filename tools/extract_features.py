#!/usr/bin/env python3
"""Encoder features of a list of videos or images, as .npy files:

    python tools/extract_features.py --cfg CONFIG --checkpoint CK --videos list.txt --out DIR \
        [--per-token] [--batch-size 8] [KEY VALUE ...]

list.txt has one path per line (a "path label" list such as train.csv works too).
Each input gives one clip: a video's central window (DATA.NUM_FRAMES frames
DATA.SAMPLING_RATE apart) and central DATA.TRAIN_CROP_SIZE crop; an image repeated over
the frames. Written into DIR: features.npy (one pooled row per input, list order),
index.csv (row, path), failed.txt, and per input pooled/<key>.npy (tokens/<key>.npy with
--per-token). A second run encodes only the inputs not done yet.
"""

import argparse
import logging
import sys

import torch

from slowmask.config import load_config
from slowmask.data import EvalTransform, build_clip_sampler, build_video_opener, read_video_list
from slowmask.engine import checkpoint
from slowmask.engine.launch import select_device
from slowmask.features import FeatureStore, MediaClips
from slowmask.features.extract import extract_features
from slowmask.models import build_model
from slowmask.utils.errors import DataError, UsageError, run_tool
from slowmask.utils.logging import current_log_file, setup_logging
from slowmask.utils.tool_args import parse_with_overrides, tool_parser

logger = logging.getLogger("slowmask.tools.extract_features")


def parse_args(argv=None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument("--cfg", dest="cfg_file", required=True, help="yaml config of the model")
    parser.add_argument("--checkpoint", required=True, help="weights of the model (a slowmask/PySlowFast checkpoint)")
    parser.add_argument("--videos", required=True, help="list of videos / images, one path per line")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--per-token", action="store_true", help="also write every grid token's features")
    parser.add_argument("--batch-size", type=int, default=8, help="inputs per forward pass")
    args, args.overrides = parse_with_overrides(parser, argv)  # the rest: KEY VALUE config overrides
    return args


def media_dataset(cfg, list_path: str) -> MediaClips:
    crop = cfg.DATA.TRAIN_CROP_SIZE  # the model's input size
    return MediaClips(
        [path for path, _ in read_video_list(list_path, cfg.DATA.PATH_PREFIX, cfg.DATA.PATH_LABEL_SEPARATOR)],
        open_video=build_video_opener(cfg),
        sampler=build_clip_sampler(cfg, "val"),
        transform=EvalTransform(crop, crop, cfg.DATA.MEAN, cfg.DATA.STD),
        num_frames=cfg.DATA.NUM_FRAMES,
    )


def run(argv) -> int:
    args = parse_args(argv)
    cfg = load_config(args.cfg_file, list(args.overrides))
    setup_logging(args.out)
    model = build_model(cfg)
    checkpoint.load_weights(args.checkpoint, model)
    try:
        dataset = media_dataset(cfg, args.videos)
    except (FileNotFoundError, ValueError) as error:
        raise DataError(str(error)) from error
    try:
        with torch.inference_mode():
            report = extract_features(
                model, dataset, FeatureStore(args.out, args.per_token), select_device(cfg),
                batch_size=args.batch_size, num_workers=cfg.DATA_LOADER.NUM_WORKERS,
            )
    except TypeError as error:  # a model that cannot give features (see encoder_tokens)
        raise UsageError(str(error)) from error
    logger.info("encoded %d inputs now, %d earlier; %d rows in %s/features.npy; %d failed (failed.txt)",
                report.extracted, report.skipped, report.rows, args.out, len(report.failed))
    return 0


def main(argv=None) -> int:
    return run_tool(run, argv, current_log_file)


if __name__ == "__main__":
    sys.exit(main())
