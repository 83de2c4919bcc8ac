"""Set up and run training from a configuration: the only engine code that reads cfg."""

import logging
import os
import random
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import torch
from fvcore.common.config import CfgNode
from torch import nn

from slowmask.config import changed_keys, write_config
from slowmask.data import build_batch_mixer, build_loader, set_epoch
from slowmask.data.loader import check_starts_part_way
from slowmask.models import build_loss, build_model
from slowmask.config.unused_keys import report_unused_keys
from slowmask.utils.logging import setup_logging

from . import checkpoint, precision
from .batchnorm import with_norm_type
from .bad_data import BadDataGuard
from .distributed import is_distributed, is_main_process
from .hooks import DataEpoch, LRSchedule, MetricsLog, PeriodicCheckpoint
from .launch import select_device
from .loop import TrainLoop
from .monitoring import build_monitoring_hooks
from .optim import build_optimizer
from .preemption import StopOnSignal, run_from
from .probe import build_probe_hooks
from .resume import ResumePoint
from .schedule import build_lr_schedule
from .step_hooks import build_step_hooks
from .pretrained import load_pretrained
from .step import ClassificationObjective, Objective, TrainStep, masked_prediction_objective
from .validation import build_validation_hooks

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"


def seed_everything(seed: int) -> None:
    """Seed the main process's generators (weight initialization, loader order)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def mixed_precision(cfg: CfgNode, device: torch.device) -> Tuple[Optional[torch.dtype], Optional[torch.amp.GradScaler]]:
    """Autocast dtype and gradient scaler (TRAIN.MIXED_PRECISION, TRAIN.MIXED_PRECISION_DTYPE):
    bf16 where the device supports it, else fp16 with a scaler (see precision.py)."""
    return precision.mixed_precision(cfg.TRAIN.MIXED_PRECISION, cfg.TRAIN.MIXED_PRECISION_DTYPE, device)


def start_point(cfg: CfgNode, model: nn.Module, optimizer, scaler) -> ResumePoint:
    """Resume from this run's newest checkpoint (TRAIN.AUTO_RESUME), else initialize
    from TRAIN.CHECKPOINT_FILE_PATH when given; returns the epoch and batch to run next."""
    own = checkpoint.load_newest(cfg.OUTPUT_DIR, model, optimizer, scaler) if cfg.TRAIN.AUTO_RESUME else None
    path = cfg.TRAIN.CHECKPOINT_FILE_PATH
    if own is not None:
        if path:
            logger.warning(
                "resuming this run from its own checkpoint in %s; TRAIN.CHECKPOINT_FILE_PATH %s is not loaded, as "
                "it only starts a run whose OUTPUT_DIR holds no checkpoint: to start from it, use a new OUTPUT_DIR",
                checkpoint.checkpoint_dir(cfg.OUTPUT_DIR), path,
            )
        return ResumePoint.after(own)
    if not path:
        return ResumePoint()
    if cfg.TRAIN.CHECKPOINT_EPOCH_RESET or cfg.TRAIN.CHECKPOINT_IN_INIT:
        load_pretrained(path, model, cfg.TRAIN.CHECKPOINT_CLEAR_NAME_PATTERN)
        return ResumePoint()
    return ResumePoint.after(checkpoint.load(path, model, optimizer, scaler))


def log_config(cfg: CfgNode) -> None:
    """Where the run writes, the keys its files and command line set, and the accepted
    PySlowFast keys it does not use; the whole config goes to OUTPUT_DIR/config.yaml (by
    the main process). Called once logging is set up, so all of it reaches stdout.log."""
    logger.info("output directory: %s", os.path.abspath(cfg.OUTPUT_DIR))
    path = os.path.join(cfg.OUTPUT_DIR, CONFIG_FILE)
    if is_main_process():
        write_config(cfg, path)
    changed = ", ".join(f"{key}={value!r}" for key, value in changed_keys(cfg).items())
    logger.info("config in %s; set by its files and the command line: %s", path, changed or "nothing")
    report_unused_keys(cfg)


def _wrapped_for_training(cfg: CfgNode, model: nn.Module, device: torch.device) -> nn.Module:
    """The module the step calls: DDP across processes, compiled when MODEL.COMPILE.
    Both share `model`'s parameters, so checkpoints keep using the plain model."""
    model = with_norm_type(model, cfg.BN.NORM_TYPE, device)
    if is_distributed():
        device_ids = [device.index] if device.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    return torch.compile(model) if cfg.MODEL.COMPILE else model


def _classification_objective(cfg: CfgNode) -> Objective:
    return ClassificationObjective(build_loss(cfg.MODEL.LOSS_FUNC), cfg.MODEL.NUM_CLASSES, build_batch_mixer(cfg))


# MASK.ENABLE -> builder of the training objective: masked pretraining or classification.
OBJECTIVES: Dict[bool, Callable[[CfgNode], Objective]] = {
    True: lambda cfg: masked_prediction_objective,
    False: _classification_objective,
}


def _objective(cfg: CfgNode) -> Objective:
    return OBJECTIVES[bool(cfg.MASK.ENABLE)](cfg)


def train(cfg: CfgNode) -> None:
    """Build model, data, optimizer and hooks from `cfg` and run the training loop."""
    setup_logging(cfg.OUTPUT_DIR, is_main_process())
    log_config(cfg)
    objective = _objective(cfg)
    seed_everything(cfg.RNG_SEED)
    device = select_device(cfg)
    model = build_model(cfg).to(device)
    logger.info("model %s: %s parameters", cfg.MODEL.MODEL_NAME, f"{sum(p.numel() for p in model.parameters()):,}")
    optimizer = build_optimizer(cfg, model)
    step_model = _wrapped_for_training(cfg, model, device)
    autocast_dtype, scaler = mixed_precision(cfg, device)
    point = start_point(cfg, model, optimizer, scaler)
    if point.epoch >= cfg.SOLVER.MAX_EPOCH:
        logger.info(
            "nothing to train: %s already holds the checkpoint of the last epoch (SOLVER.MAX_EPOCH %d); "
            "raise SOLVER.MAX_EPOCH to train further, or use a new OUTPUT_DIR to train afresh",
            checkpoint.checkpoint_dir(cfg.OUTPUT_DIR), cfg.SOLVER.MAX_EPOCH,
        )
        return
    loader = build_loader(cfg, "train")
    if len(loader) == 0:
        raise ValueError(
            f"the train split has {len(loader.dataset)} items, fewer than one batch of "
            f"{loader.batch_size}; lower TRAIN.BATCH_SIZE or add data"
        )
    if cfg.TRAIN.CHECKPOINT_PERIOD_ITERS:
        check_starts_part_way(loader, "write mid-epoch checkpoints (TRAIN.CHECKPOINT_PERIOD_ITERS)")
    step = TrainStep(
        step_model, optimizer, objective, device,
        clip_grad_l2norm=cfg.SOLVER.CLIP_GRAD_L2NORM,
        clip_grad_val=cfg.SOLVER.CLIP_GRAD_VAL,
        autocast_dtype=autocast_dtype,
        scaler=scaler,
        accum_steps=cfg.TRAIN.GRAD_ACCUM_STEPS,
        skip_nonfinite=cfg.TRAIN.NONFINITE_LOSS == "skip",
    )
    hooks = [
        DataEpoch(lambda epoch: set_epoch(loader, epoch, point.batches_done(epoch))),
        LRSchedule(optimizer, build_lr_schedule(cfg)),
        *build_step_hooks(cfg, step),  # before the logging hooks: metrics are rank means
        *build_probe_hooks(cfg, model, device),  # on every rank: each encodes its share of the probe sets
    ]
    periodic = PeriodicCheckpoint(cfg.OUTPUT_DIR, cfg.TRAIN.CHECKPOINT_PERIOD, model, optimizer, cfg.dump(), scaler,
                                  cfg.TRAIN.CHECKPOINT_PERIOD_ITERS, cfg.TRAIN.CHECKPOINT_KEEP_LAST)
    if is_main_process():  # one process writes the logs and checkpoints of the job
        hooks += [
            MetricsLog(cfg.OUTPUT_DIR, cfg.LOG_PERIOD),
            periodic,
        ]
        hooks += build_monitoring_hooks(cfg)
        hooks += build_validation_hooks(cfg, model, optimizer, device, scaler)
    hooks.append(BadDataGuard(cfg.DATA_LOADER.MAX_BAD_FRACTION))  # last: the epoch is logged before it stops
    stop = StopOnSignal(periodic.save if is_main_process() else None, device)
    hooks.append(stop)  # after every other hook of the step: it may end the run there
    logger.info("training epochs %d..%d, %d iterations each", point.epoch + 1, cfg.SOLVER.MAX_EPOCH, len(loader))
    run_from(TrainLoop(step, loader, hooks, cfg.SOLVER.MAX_EPOCH), point, stop)
