"""Training set-up from a configuration: the model, data, optimizer, step and hooks are
built here from cfg (`build_hooks` lists every hook in the order it runs), then the loop
runs.

The parts it builds (loop, step, hooks, checkpoints, evaluation) take plain arguments.
Only set-up code reads cfg: this module, the `build_*` functions of the other modules,
the test's set-up (evaluate.run_test), the launching (launch.py) and the preflight (preflight.py).
"""

import logging
import os
import random
from contextlib import ExitStack, contextmanager
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
import yaml
from fvcore.common.config import CfgNode
from torch import nn

from slowmask import checkpoint
from slowmask.checkpoint import load_pretrained
from slowmask.config import changed_keys, write_config
from slowmask.config.checks import raise_problems
from slowmask.config.unused_keys import report_unused_keys
from slowmask.data import build_batch_mixer, build_loader, set_epoch
from slowmask.data.build import build_batch_transfer
from slowmask.data.build import check_starts_part_way
from slowmask.data.index_samplers import ResumableOrder
from slowmask.data.loader_workers import LoaderWorkerKilled
from slowmask.methods import build_model
from slowmask.models import build_loss
from slowmask.utils.errors import EXIT_STATUS, SlowmaskError
from slowmask.utils.logging import setup_logging, write_json_stats
from slowmask.utils.output_files import OutputDirInUse, hold_output_dir, remove_stale_temporaries

from .evaluate import chance_top1, evaluate
from .hooks import (
    AccumulationEpochEnd,
    BadDataGuard,
    DataEpoch,
    LossExplosionStop,
    LRSchedule,
    MetricsLog,
    ModelEma,
    NonFiniteSkipLog,
    NonFiniteSkipStop,
    PeriodicCheckpoint,
    PeriodicValidation,
    ProbeHook,
    ProgressBar,
    RankMeanMetrics,
    StopOnSignal,
    TensorBoardScalars,
    WandbLog,
    WandbSettings,
    run_from,
    start_run,
    summary_writer,
)
from .distributed import any_rank, get_world_size, is_distributed, is_main_process
from .devices import select_device
from .loop import Hook, TrainLoop, hook_states
from .optim import build_lr_schedule, build_optimizer
from .preflight import training_choice_problems
from .probe import build_probe_evaluation
from .resume import ResumePoint, load, load_states
from .sharding import build_sharded_model
from .step import (
    ClassificationObjective,
    Objective,
    TrainStep,
    masked_prediction_objective,
    mixed_precision,
    model_after_update,
    steps_before,
    with_norm_type,
)
from .summary import run_start_record

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"
# TensorBoard's folder under OUTPUT_DIR when TENSORBOARD.LOG_DIR is "".
TENSORBOARD_DIR = "runs"

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
NOT_RECIPE_KEYS = ("SOLVER.MAX_EPOCH", "MODEL.COMPILE", "MODEL.ACT_CHECKPOINT", "MODEL.EMA.DEVICE")


class ResumeConflict(SlowmaskError):
    """The run's own checkpoint was written with another recipe than the current config."""


def seed_everything(seed: int) -> None:
    """Seed the main process's generators (weight initialization, loader order)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_precision(cfg: CfgNode, device: torch.device) -> Tuple[Optional[torch.dtype], Optional[torch.amp.GradScaler]]:
    """Autocast dtype and gradient scaler (TRAIN.MIXED_PRECISION, TRAIN.MIXED_PRECISION_DTYPE):
    bf16 where the device supports it, else fp16 with a scaler (see step.mixed_precision)."""
    return mixed_precision(cfg.TRAIN.MIXED_PRECISION, cfg.TRAIN.MIXED_PRECISION_DTYPE, device)


def start_point(cfg: CfgNode, model: nn.Module, optimizer, scaler) -> ResumePoint:
    """Resume from this run's newest checkpoint (TRAIN.AUTO_RESUME), after comparing its
    config with the current one, else initialize from TRAIN.CHECKPOINT_FILE_PATH when
    given; returns the epoch and batch to run next."""
    own = None
    if cfg.TRAIN.AUTO_RESUME:
        own = checkpoint.read_newest(cfg.OUTPUT_DIR, cfg.TRAIN.AUTO_RESUME_START_OVER, is_main_process())
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
        load_states(own_path, state, model, optimizer, scaler)
        return ResumePoint.after(state)
    if not path:
        return ResumePoint()
    if cfg.TRAIN.CHECKPOINT_EPOCH_RESET or cfg.TRAIN.CHECKPOINT_IN_INIT:
        load_pretrained(path, model, cfg.TRAIN.CHECKPOINT_CLEAR_NAME_PATTERN)
        return ResumePoint()
    return ResumePoint.after(load(path, model, optimizer, scaler))


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
    """The module the step calls: DDP across processes, or `model` itself sharded in place
    (TRAIN.SHARDING, engine/sharding.py), compiled when MODEL.COMPILE. All share `model`'s
    parameters, so checkpoints keep using the plain model; the optimizer is built after."""
    model = with_norm_type(model, cfg.BN.NORM_TYPE, device)
    if cfg.TRAIN.SHARDING != "none":
        model = build_sharded_model(cfg, model, device)
    elif is_distributed():
        device_ids = [device.index] if device.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    return torch.compile(model) if cfg.MODEL.COMPILE else model


def build_objective(cfg: CfgNode) -> Objective:
    """The training objective: masked pretraining with MASK.ENABLE, else classification
    (MODEL.LOSS_FUNC, with the batch mixer of MIXUP / label smoothing)."""
    if cfg.MASK.ENABLE:
        return masked_prediction_objective
    return ClassificationObjective(build_loss(cfg.MODEL.LOSS_FUNC), cfg.MODEL.NUM_CLASSES, build_batch_mixer(cfg))


def train(cfg: CfgNode) -> None:
    """Build model, data, optimizer and hooks from `cfg` and run the training loop,
    holding OUTPUT_DIR for the run's life."""
    setup_logging(cfg.OUTPUT_DIR, is_main_process())
    with owning_output_dir(cfg.OUTPUT_DIR):
        _train(cfg)


@contextmanager
def owning_output_dir(output_dir: str) -> Iterator[None]:
    """The main process holds the run lock of `output_dir` (utils.output_files) and removes the
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
    raise_problems(training_choice_problems(cfg))
    objective = build_objective(cfg)
    seed_everything(cfg.RNG_SEED)
    device = select_device(cfg)
    model = build_model(cfg).to(device)
    logger.info("model %s: %s parameters", cfg.MODEL.MODEL_NAME, f"{sum(p.numel() for p in model.parameters()):,}")
    step_model = _wrapped_for_training(cfg, model, device)
    optimizer = build_optimizer(cfg, model)
    autocast_dtype, scaler = build_precision(cfg, device)
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
    point = in_loader_batches(point, loader, cfg.TRAIN.BATCH_SIZE)
    model_ema = build_model_ema(cfg, model, len(loader))
    step = TrainStep(
        step_model, optimizer, objective, device,
        clip_grad_l2norm=cfg.SOLVER.CLIP_GRAD_L2NORM,
        clip_grad_val=cfg.SOLVER.CLIP_GRAD_VAL,
        autocast_dtype=autocast_dtype,
        scaler=scaler,
        accum_steps=cfg.TRAIN.GRAD_ACCUM_STEPS,
        skip_nonfinite=cfg.TRAIN.NONFINITE_LOSS == "skip",
        transfer=build_batch_transfer(cfg),
        after_update=model_after_update(model) + ([model_ema] if model_ema is not None else []),
        steps_done=steps_before(point.epoch, point.iteration, len(loader), cfg.TRAIN.GRAD_ACCUM_STEPS),
    )
    hooks = build_hooks(cfg, model, optimizer, scaler, step, loader, point, device, model_ema)
    if is_main_process():  # after the hooks: W&B's hook sends the records from here on
        write_json_stats(cfg.OUTPUT_DIR, run_start_record(cfg, model, len(loader.dataset)))
    point.restore_hooks(hooks, warn_unclaimed=is_main_process())
    stop = hooks[-1]  # StopOnSignal, the last hook (see build_hooks)
    logger.info("training epochs %d..%d, %d iterations each", point.epoch + 1, cfg.SOLVER.MAX_EPOCH, len(loader))
    loop = TrainLoop(step, loader, hooks, cfg.SOLVER.MAX_EPOCH)
    try:
        run_from(loop, point, stop)
    except LoaderWorkerKilled as error:
        # A sharded checkpoint is written by every rank together, and the others are not at it.
        sharded = cfg.TRAIN.SHARDING != "none"
        raise after_worker_death(error, loop, point, None if sharded else stop.save,
                                 SHARDED_UNSAVED if sharded else UNSAVED) from error


UNSAVED = "no checkpoint written by this rank (rank 0 writes them; the others stop at their next collective)"
SHARDED_UNSAVED = ("no checkpoint written (under TRAIN.SHARDING every rank writes its shards together, and the others "
                   "are not at the write); the newest one stays")


def after_worker_death(
    error: LoaderWorkerKilled, loop: TrainLoop, point: ResumePoint, save: Optional[Callable[[int, Optional[int]], str]],
    unsaved: str = UNSAVED,
) -> LoaderWorkerKilled:
    """`error` (a loader worker died; the loop stopped between two steps) with the
    checkpoint of the last completed step written through `save` (StopOnSignal's, None
    on ranks that write none: `unsaved` says why), as a stop signal would have: the run
    resumes there; at an epoch's first batch, the previous epoch's end-of-epoch checkpoint. None is written
    when nothing was trained since `point`, nor inside a gradient-accumulation cycle (its
    update never happened: the newest checkpoint stays the resume point)."""
    epoch, done = loop.epoch, loop.batches_done
    where = f"epoch {epoch + 1}, " + (f"after iteration {done}" if done else "before its first iteration")
    if (epoch, done) == (point.epoch, point.iteration):
        saved = "nothing was trained since the run started, no checkpoint written"
    elif getattr(loop.step, "pending_gradients", False):
        saved = "no checkpoint written inside a gradient-accumulation cycle; the newest one stays"
    elif save is None:
        saved = unsaved
    else:
        saved = f"checkpoint: {save(epoch, done) if done else save(epoch - 1, None)}"
    stopped = LoaderWorkerKilled(error.pid, error.death, (
        f" at {where}; {saved}; exit status {EXIT_STATUS[error.kind]}; run the same command again "
        "(TRAIN.AUTO_RESUME True) to continue"
    ))
    logger.error("%s", stopped)
    return stopped


def build_model_ema(cfg: CfgNode, model: nn.Module, iters_per_epoch: int) -> Optional[ModelEma]:
    """The moving average of the classifier's weights (MODEL.EMA), None when off; its
    warm-up of MODEL.EMA.WARMUP_EPOCHS counted in optimizer updates (an epoch's batches
    over TRAIN.GRAD_ACCUM_STEPS, its last cycle counting whole)."""
    if not cfg.MODEL.EMA.ENABLE:
        return None
    updates_per_epoch = -(-iters_per_epoch // cfg.TRAIN.GRAD_ACCUM_STEPS)
    warmup_steps = round(cfg.MODEL.EMA.WARMUP_EPOCHS * updates_per_epoch)
    device = torch.device(cfg.MODEL.EMA.DEVICE) if cfg.MODEL.EMA.DEVICE else None
    model_ema = ModelEma(model, cfg.MODEL.EMA.DECAY, warmup_steps, cfg.MODEL.EMA.WARMUP_START_DECAY, device,
                         cfg.OUTPUT_DIR if is_main_process() else None, cfg.dump())
    logger.info("model EMA: decay %g%s, kept on %s", cfg.MODEL.EMA.DECAY,
                f" after a linear warm-up from {cfg.MODEL.EMA.WARMUP_START_DECAY:g} over {warmup_steps} updates"
                if warmup_steps else "", model_ema.device)
    return model_ema


def in_loader_batches(point: ResumePoint, loader: Any, batch_total: int) -> ResumePoint:
    """`point` with its mid-epoch batch number counted in `loader`'s batches of
    `batch_total` items (all processes): TRAIN.BATCH_SIZE may differ from the checkpoint's
    (TRAIN.AUTO_RESUME_ALLOW_CHANGES), its position in items holds. A dataset's own batch
    sampler (data/datasets/mixed.py) counts batches: its point is left as it is."""
    order = loader.sampler
    if loader.batch_size is None or not isinstance(order, ResumableOrder):
        return point
    return point.in_batches_of(batch_total, order.epoch_length() * get_world_size())


def start_epoch(loader: Any, epoch: int, point: ResumePoint, batch_total: int) -> None:
    """Tell the loader the epoch (data.set_epoch) and, in the epoch `point` resumes, start
    it after this process's share of the items the interrupted run consumed (the sampler
    skips them unloaded). A dataset's own batch sampler (data/datasets/mixed.py) counts batches."""
    if loader.batch_size is None:
        set_epoch(loader, epoch, point.batches_done(epoch))
        return
    set_epoch(loader, epoch)
    items = point.items_done(epoch, batch_total) // get_world_size()
    if items:
        check_starts_part_way(loader, f"resume part-way through epoch {epoch + 1}")
        loader.sampler.set_start(items)


def build_hooks(
    cfg: CfgNode,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: Optional[torch.amp.GradScaler],
    step: TrainStep,
    loader: Any,
    point: ResumePoint,
    device: torch.device,
    model_ema: Optional[ModelEma] = None,
) -> List[Hook]:
    """Every hook of a training run, in the order they run at each moment. `model` is the
    plain model (checkpoints, validation, probes), `step` the step that trains it, `point`
    where the run starts (the loader skips the batches of a resumed epoch already run),
    `model_ema` the weights' moving average the step updates (MODEL.EMA), validated beside
    the model.

    The order matters: rank means replace the step's metrics before anything logs them;
    the main process alone writes logs and checkpoints (under TRAIN.SHARDING every rank
    writes its shards of each); every rank validates and probes
    its share of the videos; BadDataGuard comes after the logs, so the epoch is logged
    before it stops the run; StopOnSignal comes last (the step's last word: it may end the
    run there) and is the list's last item, for `run_from`. Each checkpoint stores the
    states of the hooks listed here (Hook.state_dict), as they are when it is written.
    """
    main = is_main_process()
    sharded = cfg.TRAIN.SHARDING != "none"  # every rank writes its shards of each checkpoint
    batch_total = cfg.TRAIN.BATCH_SIZE
    checkpointer = PeriodicCheckpoint(cfg.OUTPUT_DIR, cfg.TRAIN.CHECKPOINT_PERIOD, model, optimizer, cfg.dump(), scaler,
                                      cfg.TRAIN.CHECKPOINT_PERIOD_ITERS, cfg.TRAIN.CHECKPOINT_KEEP_LAST,
                                      lambda epoch, batches: point.items_after(epoch, batches, batch_total),
                                      lambda: hook_states(hooks), sharded, prunes=main)
    hooks: List[Hook] = [
        DataEpoch(lambda epoch: start_epoch(loader, epoch, point, batch_total)),
        LRSchedule(optimizer, build_lr_schedule(cfg)),
        AccumulationEpochEnd(step),
    ]
    if is_distributed():
        hooks.append(RankMeanMetrics())
    if cfg.TRAIN.NONFINITE_LOSS == "skip" and main:
        hooks.append(NonFiniteSkipLog(cfg.OUTPUT_DIR))
    if cfg.TRAIN.KILL_LOSS_EXPLOSION_FACTOR > 0:
        hooks.append(LossExplosionStop(cfg.TRAIN.KILL_LOSS_EXPLOSION_FACTOR))
    if cfg.PROBE.ENABLE and cfg.MASK.ENABLE:  # the probe of a pretraining run
        probes = build_probe_evaluation(cfg, model, device, cfg.PROBE.EVAL_SPLIT, cfg.PROBE.ATTENTIVE)
        writer = summary_writer(tensorboard_dir(cfg)) if cfg.TENSORBOARD.ENABLE and main else None
        hooks.append(ProbeHook(probes, cfg.PROBE.PERIOD, cfg.OUTPUT_DIR, writer,
                               probes.prepare if cfg.PROBE.CACHE_CLIPS else None, chance_top1(probes.num_classes)))
    if main:
        hooks += [MetricsLog(cfg.OUTPUT_DIR, cfg.LOG_PERIOD, get_world_size()), checkpointer, ProgressBar()]
        if cfg.TENSORBOARD.ENABLE:
            hooks.append(TensorBoardScalars(summary_writer(tensorboard_dir(cfg))))
    elif sharded:
        hooks.append(checkpointer)
    if model_ema is not None:  # its state in every checkpoint; before validation, which reads it
        hooks.append(model_ema)
    if not cfg.MASK.ENABLE:  # a classifier's validation; pretraining has no labels to score
        validate = _validation(cfg)
        saver = _best_checkpoint_saver(cfg, model, optimizer, scaler) if main or sharded else None
        hooks.append(PeriodicValidation(lambda: validate(model, device), cfg.TRAIN.EVAL_PERIOD, cfg.OUTPUT_DIR,
                                        saver, main,
                                        None if model_ema is None else lambda: validate(model_ema.module,
                                                                                        model_ema.device)))
    if cfg.WANDB.ENABLE and main:  # after every hook that writes json_stats.log's records
        config = yaml.safe_load(cfg.dump())
        hooks.append(WandbLog(lambda: start_run(cfg.OUTPUT_DIR, WandbSettings.from_config(cfg), config),
                              cfg.OUTPUT_DIR, keep_open=cfg.TEST.ENABLE))
    hooks.append(BadDataGuard(cfg.DATA_LOADER.MAX_BAD_FRACTION))
    if cfg.TRAIN.NONFINITE_LOSS == "skip":  # every rank: they agree on each skip, so all stop at one step
        hooks.append(NonFiniteSkipStop(cfg.TRAIN.NONFINITE_SKIP_MAX_SHARE))
    hooks.append(StopOnSignal(checkpointer.save if main or sharded else None))
    return hooks


def tensorboard_dir(cfg: CfgNode) -> str:
    """TENSORBOARD.LOG_DIR, by default OUTPUT_DIR/runs."""
    return cfg.TENSORBOARD.LOG_DIR or os.path.join(cfg.OUTPUT_DIR, TENSORBOARD_DIR)


def _validation(cfg: CfgNode) -> Callable[[nn.Module, torch.device], Dict[str, Any]]:
    """(classifier, its device) -> its metrics on the "val" split (see evaluate.evaluate)."""
    loader = build_loader(cfg, "val")
    return lambda model, on: evaluate(model, loader, on, cfg.MODEL.NUM_CLASSES, cfg.MODEL.HEAD_ACT,
                                      cfg.DATA.ENSEMBLE_METHOD)


def _best_checkpoint_saver(
    cfg: CfgNode, model: nn.Module, optimizer: torch.optim.Optimizer, scaler: Optional[torch.amp.GradScaler]
) -> Callable[[int], None]:
    """(0-based epoch) -> None: writes OUTPUT_DIR/checkpoints/checkpoint_best.pyth (a sharded
    run: the folder checkpoint_best, written by every rank)."""
    def save_best(epoch: int) -> None:
        path = checkpoint.best_checkpoint_path(cfg.OUTPUT_DIR)
        if cfg.TRAIN.SHARDING != "none":
            checkpoint.save_sharded_checkpoint(path[: -len(".pyth")], model, optimizer, epoch, cfg.dump(), scaler)
        else:
            checkpoint.save_checkpoint(path, model, optimizer, epoch, cfg.dump(), scaler)

    return save_best
