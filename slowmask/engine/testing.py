"""Set up and run multi-view testing from a configuration (TEST.ENABLE): the classifier
of TEST.CHECKPOINT_FILE_PATH (or this run's newest checkpoint) on the "test" split,
TEST.NUM_ENSEMBLE_VIEWS x TEST.NUM_SPATIAL_CROPS views per video. Every process of the
job scores its share of the videos (see evaluate.evaluate); the main one writes
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
from .distributed import is_main_process
from .evaluate import evaluate
from .launch import select_device
from .pretrained import PRETRAINING_ONLY
from .state_diff import state_diff

logger = logging.getLogger(__name__)

RESULTS_FILE = "test_results.json"


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
    """Load a classifier checkpoint as it is (a test must not run half-initialized).

    Raises:
        CheckpointError: the checkpoint is a masked-pretraining one (no trained classifier
            head: it has to be fine-tuned first), or it does not fit the model.
    """
    state = checkpoint.read_checkpoint(path)["model_state"]
    pretraining = [name for name in state if name.startswith(PRETRAINING_ONLY)]
    if pretraining:
        raise checkpoint.CheckpointError(
            f"cannot test {path}: it is a masked-pretraining checkpoint (it holds {pretraining[0]} and "
            f"{len(pretraining) - 1} more pretraining-only tensors, and no trained classifier head). "
            f"Fine-tune it first (TRAIN.ENABLE True TRAIN.CHECKPOINT_FILE_PATH {path}) and test the "
            "result, or give TEST.CHECKPOINT_FILE_PATH a classifier checkpoint"
        )
    try:
        checkpoint.unwrapped(model).load_state_dict(state, strict=True)
    except RuntimeError:
        # The raw error has a line per key; the diff groups them by module.
        diff = state_diff(state, checkpoint.unwrapped(model).state_dict())
        raise checkpoint.CheckpointError(
            f"cannot test {path}: it does not fit this model:\n{diff.summary()}\nTest it with the "
            "config of the run that wrote it (the checkpoint holds that config under 'cfg')"
        ) from None
    logger.info("testing the classifier of %s", path)


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
    """Multi-view test of the classifier, in every process of the job; returns the
    metrics of the whole test split (see evaluate.accuracy) on every process."""
    setup_logging(cfg.OUTPUT_DIR, is_main_process())
    report_unused_keys(cfg)  # after the set-up, so the line reaches the console and stdout.log
    device = select_device(cfg)
    model = build_model(cfg).to(device)
    path = checkpoint_to_test(cfg)
    load_classifier(path, model)
    loader = build_loader(cfg, "test")
    metrics = evaluate(
        model, loader, device, cfg.MODEL.NUM_CLASSES, cfg.MODEL.HEAD_ACT, cfg.DATA.ENSEMBLE_METHOD
    )
    if not is_main_process():
        return metrics
    save_results(cfg, metrics)
    logger.info(
        "test of %s: top-1 %.2f %%, top-5 %.2f %% over %d videos x %d views (chance %.2f %%); "
        "results in %s",
        path, metrics["top1"], metrics["top5"], metrics["num_videos"], metrics["views_per_video"],
        metrics["chance"], os.path.join(cfg.OUTPUT_DIR, RESULTS_FILE),
    )
    return metrics
