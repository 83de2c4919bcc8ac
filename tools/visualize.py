#!/usr/bin/env python3
"""Pictures of what a masked-pretraining model learns, for a few clips of a split:

    python tools/visualize.py --cfg CONFIG [--split train|val|test] [--num-clips 4] [--out DIR] [KEY VALUE ...]

Per clip, into --out (default OUTPUT_DIR/vis): clip_NN_<video>.png, a grid with one row
per prediction-grid temporal index (the frame, the mask over it, the target of every
token, the model's prediction for the masked tokens), and clip_NN_<video>.gif / .mp4,
the clip with the mask. The model is TRAIN.CHECKPOINT_FILE_PATH, or else the newest
checkpoint of OUTPUT_DIR. Clips are the central window and crop (at DATA.TRAIN_CROP_SIZE,
the model's input size) of videos spread over the split's list, masks drawn as in training.
With WANDB.ENABLE the PNG pictures are added to the run's W&B run (as `visualizations`).
Without --split the clips come from val, or from train (with a warning) when the data has
no val list, as after a pretraining on a folder of videos (TRAIN.DATASET video_folder).
"""

import argparse
import logging
import os
import sys
from typing import List

import numpy as np
import torch

from slowmask.config import ConfigError, load_config
from slowmask.data import build_dataset
from slowmask.data.datasets.video_list import ListNotFoundError
from slowmask.engine.hooks import WandbSettings, log_pictures
from slowmask.engine.preflight import missing_package_problems
from slowmask import checkpoint
from slowmask.methods import build_model
from slowmask.geometry import TokenGeometry
from slowmask.targets import build_target
from slowmask.utils.errors import run_tool
from slowmask.utils.logging import fresh_log_file, setup_logging
from slowmask.utils.tool_args import check_output_folder, parse_with_overrides, positive_int, tool_parser
from slowmask.visualization import (
    build_painter,
    masked_animation,
    predict_clip,
    prediction_figure,
    save_animation,
    save_png,
    to_uint8_frames,
)

logger = logging.getLogger("slowmask.tools.visualize")


def parse_args(argv=None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument("--cfg", dest="cfg_file", required=True, help="yaml config of the model")
    parser.add_argument("--split", default="", choices=("train", "val", "test"),
                        help="list of videos to draw from (default: val, else train)")
    parser.add_argument("--num-clips", type=positive_int, default=4, help="clips to draw")
    parser.add_argument("--out", default="", help="output folder (default OUTPUT_DIR/vis)")
    parser.add_argument("--scale", type=positive_int, default=4, help="pictures are this many times the crop size")
    parser.add_argument("--formats", nargs="*", default=["gif", "mp4"], choices=("gif", "mp4"),
                        help="animations of the masked clip to write")
    args, args.overrides = parse_with_overrides(parser, argv)
    return args


def model_checkpoint(cfg) -> str:
    """TRAIN.CHECKPOINT_FILE_PATH, or the newest checkpoint in OUTPUT_DIR."""
    path = cfg.TRAIN.CHECKPOINT_FILE_PATH or checkpoint.last_checkpoint(cfg.OUTPUT_DIR)
    if not path:
        raise checkpoint.CheckpointError(
            f"no model to draw: TRAIN.CHECKPOINT_FILE_PATH is empty and {checkpoint.checkpoint_dir(cfg.OUTPUT_DIR)} "
            "holds no checkpoint; train first or pass TRAIN.CHECKPOINT_FILE_PATH"
        )
    return path


def visualization_config(cfg):
    """Evaluation clips at the model's input size: DATA.TEST_CROP_SIZE = DATA.TRAIN_CROP_SIZE."""
    if not cfg.MASK.ENABLE:
        raise ConfigError("tools/visualize.py draws masked-prediction models: MASK.ENABLE must be True")
    cfg = cfg.clone()
    cfg.defrost()
    cfg.DATA.TEST_CROP_SIZE = cfg.DATA.TRAIN_CROP_SIZE
    cfg.freeze()
    return cfg


def clip_source(cfg, split: str):
    """The dataset of `split`; when none was asked for (""), val's, else train's when the
    data has no val list (a pretraining on a folder of videos), with a WARNING."""
    if split:
        return build_dataset(cfg, split)
    try:
        return build_dataset(cfg, "val")
    except ListNotFoundError as error:
        logger.warning("%s: drawing the clips from the train split instead (--split chooses)", error)
        return build_dataset(cfg, "train")


def draw(cfg, args: argparse.Namespace) -> List[str]:
    """Write the pictures of `args.num_clips` clips; returns the PNG files' paths."""
    out_dir = args.out or os.path.join(cfg.OUTPUT_DIR, "vis")
    model = build_model(cfg)
    checkpoint.load_weights(model_checkpoint(cfg), model)
    target = build_target(cfg)
    painter = build_painter(target)
    dataset = clip_source(cfg, args.split)
    grid = TokenGeometry.from_config(cfg).prediction_grid
    count = min(args.num_clips, len(dataset))
    pictures = []
    for number, index in enumerate(np.linspace(0, len(dataset) - 1, count).round().astype(int)):
        item = dataset[int(index)]
        frames = to_uint8_frames(item["clip"], cfg.DATA.MEAN, cfg.DATA.STD)
        prediction = predict_clip(model, target, item["clip"], item["mask"], grid)
        stem = os.path.join(out_dir, f"clip_{number:02d}_{os.path.splitext(os.path.basename(item['meta']['path']))[0]}")
        save_png(prediction_figure(frames, prediction, painter, grid, args.scale), stem + ".png")
        for extension in args.formats:
            save_animation(masked_animation(frames, item["mask"], args.scale), f"{stem}.{extension}")
        logger.info("wrote %s.png (loss %.4g on this clip)", stem, prediction.loss)
        pictures.append(stem + ".png")
    return pictures


def run(argv) -> int:
    args = parse_args(argv)
    check_output_folder(args.out, "--out")
    cfg = visualization_config(load_config(args.cfg_file, list(args.overrides)))
    missing = missing_package_problems(cfg)  # wandb for WANDB.ENABLE, the decoding backend's package
    if missing:
        raise ConfigError.of_all(missing)
    setup_logging(cfg.OUTPUT_DIR)
    torch.manual_seed(cfg.RNG_SEED)
    pictures = draw(cfg, args)
    if cfg.WANDB.ENABLE:  # the pictures join the run's W&B run (OUTPUT_DIR/wandb_run_id)
        log_pictures(cfg.OUTPUT_DIR, WandbSettings.from_config(cfg), "visualizations", pictures)
    return 0


def main(argv=None) -> int:
    return run_tool(run, argv, fresh_log_file())


if __name__ == "__main__":
    sys.exit(main())
