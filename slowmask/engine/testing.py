"""Set up and run multi-view testing from a configuration (TEST.ENABLE): the classifier
of TEST.CHECKPOINT_FILE_PATH (or this run's newest checkpoint) on the "test" split,
TEST.NUM_ENSEMBLE_VIEWS x TEST.NUM_SPATIAL_CROPS views per video. Writes
OUTPUT_DIR/test_results.json and, with TEST.SAVE_RESULTS_PATH, the per-video scores."""

import logging
import os
from typing import Any, Dict

import simplejson
import torch
from fvcore.common.config import CfgNode
from iopath.common.file_io import g_pathmgr
from torch import nn

from slowmask.data import build_loader
from slowmask.models import build_model
from slowmask.config.unused_keys import report_unused_keys
from slowmask.utils.logging import setup_logging

from . import checkpoint
from .distributed import is_distributed
from .evaluate import evaluate
from .launch import select_device

logger = logging.getLogger(__name__)

RESULTS_FILE = "test_results.json"


def check_single_process(what: str) -> None:
    if is_distributed():
        raise NotImplementedError(
            f"{what} runs in one process (its views are combined per video); "
            "run it with NUM_GPUS 1 (or 0) and NUM_SHARDS 1"
        )


def checkpoint_to_test(cfg: CfgNode) -> str:
    """TEST.CHECKPOINT_FILE_PATH, else the newest checkpoint in OUTPUT_DIR/checkpoints."""
    path = cfg.TEST.CHECKPOINT_FILE_PATH or checkpoint.last_checkpoint(cfg.OUTPUT_DIR)
    if not path:
        raise checkpoint.CheckpointError(
            f"nothing to test: TEST.CHECKPOINT_FILE_PATH is empty and {checkpoint.checkpoint_dir(cfg.OUTPUT_DIR)} "
            "holds no checkpoint; give TEST.CHECKPOINT_FILE_PATH a fine-tuned classifier"
        )
    return path


def load_classifier(path: str, model: nn.Module) -> None:
    """Load a classifier checkpoint as it is (a test must not run half-initialized)."""
    try:
        checkpoint.resume(path, model)
    except checkpoint.CheckpointError as error:
        raise checkpoint.CheckpointError(f"cannot test with this checkpoint: {error}") from error


def save_results(cfg: CfgNode, metrics: Dict[str, Any]) -> None:
    """Accuracies as JSON in OUTPUT_DIR; per-video scores at TEST.SAVE_RESULTS_PATH (a
    torch file {"scores" (V, K), "labels" (V,), "paths" [V]}, relative to OUTPUT_DIR)."""
    videos = metrics["videos"]
    g_pathmgr.mkdirs(cfg.OUTPUT_DIR)
    summary = {key: value for key, value in metrics.items() if key != "videos"}
    with g_pathmgr.open(os.path.join(cfg.OUTPUT_DIR, RESULTS_FILE), "w") as f:
        simplejson.dump(summary, f, indent=2)
    if cfg.TEST.SAVE_RESULTS_PATH:
        path = os.path.join(cfg.OUTPUT_DIR, cfg.TEST.SAVE_RESULTS_PATH)
        paths = [videos.paths[int(v)] for v in videos.video]
        with g_pathmgr.open(path, "wb") as f:
            torch.save({"scores": videos.scores, "labels": videos.labels, "paths": paths}, f)
        logger.info("per-video scores written to %s", path)


def run_test(cfg: CfgNode) -> Dict[str, Any]:
    """Multi-view test of the classifier; returns the metrics (see evaluate.accuracy)."""
    setup_logging(cfg.OUTPUT_DIR)
    report_unused_keys(cfg)  # after the set-up, so the line reaches the console and stdout.log
    check_single_process("testing")
    device = select_device(cfg)
    model = build_model(cfg).to(device)
    path = checkpoint_to_test(cfg)
    load_classifier(path, model)
    loader = build_loader(cfg, "test")
    metrics = evaluate(
        model, loader, device, cfg.MODEL.NUM_CLASSES, cfg.MODEL.HEAD_ACT, cfg.DATA.ENSEMBLE_METHOD
    )
    save_results(cfg, metrics)
    logger.info(
        "test of %s: top-1 %.2f %%, top-5 %.2f %% over %d videos x %d views (chance %.2f %%); "
        "results in %s",
        path, metrics["top1"], metrics["top5"], metrics["num_videos"], metrics["views_per_video"],
        metrics["chance"], os.path.join(cfg.OUTPUT_DIR, RESULTS_FILE),
    )
    return metrics
