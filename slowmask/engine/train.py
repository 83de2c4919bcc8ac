"""Set up and run training from a configuration: the only engine code that reads cfg."""

import logging
import os
import random
from contextlib import ExitStack, contextmanager
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

import numpy as np
import torch
import yaml
from fvcore.common.config import CfgNode
from torch import nn

from slowmask.config import changed_keys, write_config
from slowmask.data import build_batch_mixer, build_loader, set_epoch
from slowmask.data.build import build_batch_transfer
from slowmask.data.loader import check_starts_part_way
from slowmask.models import build_loss, build_model
from slowmask.config.unused_keys import report_unused_keys
from slowmask.utils.errors import SlowmaskError
from slowmask.utils.logging import setup_logging
from slowmask.utils.output_files import remove_stale_temporaries

from . import checkpoint, precision, teacher  # teacher: registers the "teacher" target
from .batchnorm import with_norm_type
from .bad_data import BadDataGuard
from .distributed import any_rank, is_distributed, is_main_process
from .hooks import DataEpoch, LRSchedule, MetricsLog, PeriodicCheckpoint
from .launch import select_device
from .loop import TrainLoop
from .monitoring import build_monitoring_hooks
from .optim import build_optimizer
from .preemption import StopOnSignal, run_from
from .probe import build_probe_hooks
from .resume import ResumePoint
from .run_lock import OutputDirInUse, hold_output_dir
from .schedule import build_lr_schedule
from .step_hooks import build_step_hooks
from .pretrained import load_pretrained
from .step import ClassificationObjective, Objective, TrainStep, masked_prediction_objective
from .validation import build_validation_hooks

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"

# Keys (prefixes) that make the recipe: resuming a checkpoint written with other values
# would mix two runs, so it needs TRAIN.AUTO_RESUME_ALLOW_CHANGES.
RECIPE_KEYS = (
    "MODEL.", "MVIT.", "MASK.", "AUG.", "MIXUP.", "BN.", "SOLVER.",
    "TRAIN.DATASET", "TRAIN.BATCH_SIZE", "TRAIN.GRAD_ACCUM_STEPS", "TRAIN.MIXED_PRECISION",
    "DATA.NUM_FRAMES", "DATA.SAMPLING_RATE", "DATA.TARGET_FPS", "DATA.TRAIN_", "DATA.MEAN", "DATA.STD",
    "DATA.INPUT_CHANNEL_NUM", "DATA.REVERSE_INPUT_CHANNEL", "DATA.RANDOM_FLIP",
)
# ... but not these: how long the run goes (raising MAX_EPOCH is how a finished run is
# continued) and how its steps are computed, not what they compute.
NOT_RECIPE_KEYS = ("SOLVER.MAX_EPOCH", "MODEL.COMPILE", "MODEL.ACT_CHECKPOINT")


class ResumeConflict(SlowmaskError):
    """The run's own checkpoint was written with another recipe than the current config."""


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
    """Resume from this run's newest checkpoint (TRAIN.AUTO_RESUME), after comparing its
    config with the current one, else initialize from TRAIN.CHECKPOINT_FILE_PATH when
    given; returns the epoch and batch to run next."""
    own = checkpoint.read_newest(cfg.OUTPUT_DIR) if cfg.TRAIN.AUTO_RESUME else None
    path = cfg.TRAIN.CHECKPOINT_FILE_PATH
    if own is not None:
        own_path, state = own
        if path:
            logger.warning(
                "resuming this run from its own checkpoint in %s; TRAIN.CHECKPOINT_FILE_PATH %s is not loaded, as "
                "it only starts a run whose OUTPUT_DIR holds no checkpoint: to start from it, use a new OUTPUT_DIR",
                checkpoint.checkpoint_dir(cfg.OUTPUT_DIR), path,
            )
        check_resumed_config(cfg, own_path, state.get("cfg"))
        checkpoint.load_states(own_path, state, model, optimizer, scaler)
        return ResumePoint.after(state)
    if not path:
        return ResumePoint()
    if cfg.TRAIN.CHECKPOINT_EPOCH_RESET or cfg.TRAIN.CHECKPOINT_IN_INIT:
        load_pretrained(path, model, cfg.TRAIN.CHECKPOINT_CLEAR_NAME_PATTERN)
        return ResumePoint()
    return ResumePoint.after(checkpoint.load(path, model, optimizer, scaler))


def check_resumed_config(cfg: CfgNode, path: str, stored_yaml: Optional[str]) -> None:
    """Log the keys whose value differs from the config stored in the checkpoint at
    `path`, and stop when one of them is a RECIPE_KEYS key, unless
    TRAIN.AUTO_RESUME_ALLOW_CHANGES. Keys the stored config lacks are not compared.

    Raises:
        ResumeConflict: the recipe differs and changes are not allowed.
    """
    stored = _as_config(stored_yaml)
    if stored is None:
        logger.warning("%s holds no config: the current one cannot be compared with the one it was written with", path)
        return
    current = _as_config(cfg.dump())  # through yaml too, so that a tuple equals the list it is dumped as
    differ = {key: (_value_at(stored, key), value) for key, value in changed_keys(current, stored).items()
              if _value_at(stored, key) is not _ABSENT}
    if not differ:
        return
    listed = ", ".join(f"{key} {before!r} -> {after!r}" for key, (before, after) in differ.items())
    logger.info("resuming from %s with keys changed since it was written: %s", path, listed)
    recipe = [key for key in differ if key.startswith(RECIPE_KEYS) and not key.startswith(NOT_RECIPE_KEYS)]
    if recipe and not cfg.TRAIN.AUTO_RESUME_ALLOW_CHANGES:
        changes = ", ".join(f"{key} {differ[key][0]!r} -> {differ[key][1]!r}" for key in recipe)
        raise ResumeConflict(
            f"OUTPUT_DIR {cfg.OUTPUT_DIR} holds the checkpoint {path} of a run with another recipe ({changes}): "
            "resuming it would mix two runs; give this run another OUTPUT_DIR, or set "
            "TRAIN.AUTO_RESUME_ALLOW_CHANGES True to continue that run with the new values"
        )


_ABSENT = object()


def _as_config(text: Optional[str]) -> Optional[CfgNode]:
    """The yaml mapping in `text` as a CfgNode; None for no text or text that is not one."""
    try:
        loaded = yaml.safe_load(text) if text else None
    except yaml.YAMLError:
        return None
    return CfgNode(loaded) if isinstance(loaded, dict) else None


def _value_at(node: CfgNode, key: str) -> Any:
    """The value of a dotted key in `node`, or _ABSENT."""
    for part in key.split("."):
        if not isinstance(node, CfgNode) or part not in node:
            return _ABSENT
        node = node[part]
    return node


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
    """Build model, data, optimizer and hooks from `cfg` and run the training loop,
    holding OUTPUT_DIR for the run's life."""
    setup_logging(cfg.OUTPUT_DIR, is_main_process())
    with owning_output_dir(cfg.OUTPUT_DIR):
        _train(cfg)


@contextmanager
def owning_output_dir(output_dir: str) -> Iterator[None]:
    """The main process holds the run lock of `output_dir` (run_lock.py) and removes the
    temporary files killed runs left there; when it cannot take the lock, every rank
    stops, so no rank waits at a collective for a main process that is gone."""
    with ExitStack() as held:
        refused: Optional[OutputDirInUse] = None
        if is_main_process():
            try:
                held.enter_context(hold_output_dir(output_dir))
            except OutputDirInUse as error:
                refused = error
        if any_rank(refused is not None):
            raise refused or OutputDirInUse(f"the main process could not take the run lock of {output_dir}: see its message")
        if is_main_process():
            remove_stale_temporaries([output_dir, checkpoint.checkpoint_dir(output_dir)])
        yield


def _train(cfg: CfgNode) -> None:
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
        transfer=build_batch_transfer(cfg),
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
    hooks += build_validation_hooks(cfg, model, optimizer, device, scaler)  # every rank scores its share
    hooks.append(BadDataGuard(cfg.DATA_LOADER.MAX_BAD_FRACTION))  # last: the epoch is logged before it stops
    stop = StopOnSignal(periodic.save if is_main_process() else None, device)
    hooks.append(stop)  # after every other hook of the step: it may end the run there
    logger.info("training epochs %d..%d, %d iterations each", point.epoch + 1, cfg.SOLVER.MAX_EPOCH, len(loader))
    run_from(TrainLoop(step, loader, hooks, cfg.SOLVER.MAX_EPOCH), point, stop)
