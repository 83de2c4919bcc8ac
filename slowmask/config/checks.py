"""Checks that a merged configuration can run, before any work starts.

Each check raises ConfigError naming the keys that disagree and what would be valid;
`check_config` runs them all and reports every failure in one error. These are the
checks of sizes and of keys that must agree with each other; a choice that only a
component knows (a decoding backend, a RandAugment string, a precision) is checked by
that component's builder, with `choice_problem`, and again by the preflight.
"""

import math
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from fvcore.common.config import CfgNode

from slowmask.geometry import TokenGeometry, divides, world_size
from slowmask.utils.errors import ConfigError

from .unused_keys import refused_keys_set

SUPPORTED_OPTIMIZERS = ("sgd", "adam", "adamw")
SUPPORTED_LR_POLICIES = ("cosine", "constant")


def check_config(cfg: CfgNode) -> None:
    """Run every check; raise one ConfigError that lists each failure."""
    problems: List[str] = []
    for check in CHECKS:
        try:
            check(cfg)
        except ConfigError as error:
            problems += error.problems
        except Exception:
            # A check that breaks on a value an earlier check refused: report those.
            if not problems:
                raise
            break
    if problems:
        raise ConfigError.of_all(problems)


# Counts and sizes of the data and loader: the least value each can take, and what that
# value means. Checked first: later checks divide by some of them (the job's own counts,
# NUM_GPUS and NUM_SHARDS, are check_job_size's).
MINIMUMS: Dict[str, Tuple[int, str]] = {
    "LOG_PERIOD": (1, "iterations between log lines"),
    "TRAIN.EVAL_PERIOD": (1, "epochs between evaluations"),
    "DATA.NUM_FRAMES": (1, "frames per clip"),
    "DATA.SAMPLING_RATE": (1, "frames between sampled frames"),
    "DATA.TARGET_FPS": (1, "frames per second"),
    "DATA.TRAIN_CROP_SIZE": (1, "pixels"),
    "DATA.TEST_CROP_SIZE": (1, "pixels"),
    "DATA.DECODING_SHORT_SIZE": (0, "pixels; 0 keeps the native size"),
    "DATA_LOADER.NUM_WORKERS": (0, "worker processes; 0 loads in the training process"),
    "DATA_LOADER.NUM_RETRIES": (0, "other videos tried for an unreadable one; 0 fails at once"),
}


def _value(cfg: CfgNode, key: str) -> Any:
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def choice_problem(cfg: CfgNode, key: str, choices: Sequence[Any]) -> Optional[str]:
    """The problem line for `key` (e.g. "DATA.DECODING_BACKEND") when its value is not one
    of `choices`, else None."""
    value = _value(cfg, key)
    if value in choices:
        return None
    return f"{key} is {value!r}; supported: {', '.join(map(repr, choices))}"


def raise_problems(problems: Sequence[Optional[str]]) -> None:
    """One ConfigError listing every problem line given (None: no problem)."""
    found = [problem for problem in problems if problem]
    if found:
        raise ConfigError.of_all(found)


def check_minimums(cfg: CfgNode) -> None:
    """Every key of MINIMUMS at or above its least value, all failures reported together."""
    problems = []
    for key, (least, meaning) in MINIMUMS.items():
        value = _value(cfg, key)
        if value < least:
            problems.append(f"{key} must be at least {least} ({meaning}), got {value}")
    if problems:
        raise ConfigError.of_all(problems)


def check_choices(cfg: CfgNode) -> None:
    choices = {
        "SOLVER.OPTIMIZING_METHOD": SUPPORTED_OPTIMIZERS,
        "SOLVER.LR_POLICY": SUPPORTED_LR_POLICIES,
        "MVIT.NORM": ("layernorm",),
        "MVIT.REV.ENABLE": (False,),
    }
    raise_problems([choice_problem(cfg, key, valid) for key, valid in choices.items()])


def check_job_size(cfg: CfgNode) -> None:
    """The job's shape, before anything divides by it: GPUs per machine, machines, this one."""
    if cfg.NUM_GPUS < 0:
        raise ConfigError(f"NUM_GPUS is {cfg.NUM_GPUS}; it counts the GPUs of each machine: 0 (the CPU) or more")
    if cfg.NUM_SHARDS < 1:
        raise ConfigError(
            f"NUM_SHARDS (--num_shards) is {cfg.NUM_SHARDS}; it counts the machines of the job: 1 or more"
        )
    if not 0 <= cfg.SHARD_ID < cfg.NUM_SHARDS:
        raise ConfigError(
            f"SHARD_ID (--shard_id) is {cfg.SHARD_ID} but NUM_SHARDS (--num_shards) is {cfg.NUM_SHARDS}: "
            f"the machines are numbered 0 to {cfg.NUM_SHARDS - 1}"
        )


def check_batch(cfg: CfgNode) -> None:
    world = world_size(cfg.NUM_GPUS, cfg.NUM_SHARDS)
    for key in ("TRAIN.BATCH_SIZE", "TEST.BATCH_SIZE"):
        size = cfg.TRAIN.BATCH_SIZE if key.startswith("TRAIN") else cfg.TEST.BATCH_SIZE
        if size < world or size % world:
            raise ConfigError(
                f"{key} ({size}) must be a positive multiple of the number of processes "
                f"max(1, NUM_GPUS) * NUM_SHARDS = {world}"
            )


def check_patch_geometry(cfg: CfgNode) -> None:
    if cfg.MVIT.PATCH_2D and cfg.DATA.NUM_FRAMES != 1:
        raise ConfigError(f"MVIT.PATCH_2D needs DATA.NUM_FRAMES 1, got {cfg.DATA.NUM_FRAMES}")
    geometry = TokenGeometry.from_config(cfg)
    size, stride, grid = list(geometry.input_size), list(geometry.stride), geometry.token_grid
    if cfg.MVIT.PATCH_2D:
        size, stride = size[1:], stride[1:]
        if not divides(stride, size):
            raise ConfigError(
                f"the image DATA.TRAIN_CROP_SIZE^2 = {size} is not divided evenly by the 2-D "
                f"MVIT.PATCH_STRIDE {stride}"
            )
        return
    expected = tuple(s // st for s, st in zip(size, stride))
    if not divides(stride, size) or grid != expected:
        raise ConfigError(
            f"the input DATA.NUM_FRAMES x DATA.TRAIN_CROP_SIZE^2 = {size} is not divided evenly by "
            f"MVIT.PATCH_STRIDE {list(stride)} (with MVIT.PATCH_KERNEL {list(cfg.MVIT.PATCH_KERNEL)} "
            f"and MVIT.PATCH_PADDING {list(cfg.MVIT.PATCH_PADDING)} the token grid is {list(grid)})"
        )


def check_masking(cfg: CfgNode) -> None:
    if not cfg.MASK.ENABLE:
        return
    depth = cfg.MVIT.DEPTH
    bad = [d for d in cfg.MASK.PRETRAIN_DEPTH if not 0 <= d < depth]
    if not cfg.MASK.PRETRAIN_DEPTH or bad:
        raise ConfigError(
            f"MASK.PRETRAIN_DEPTH {list(cfg.MASK.PRETRAIN_DEPTH)} must name blocks in "
            f"[0, MVIT.DEPTH - 1 = {depth - 1}]"
        )
    # The multi-block mask's blocks decide its fraction; its builder warns when a ratio is set.
    if cfg.AUG.MASK_TYPE != "multiblock" and not 0.0 < cfg.AUG.MASK_RATIO < 1.0:
        raise ConfigError(f"AUG.MASK_RATIO must lie in (0, 1), got {cfg.AUG.MASK_RATIO}")
    if cfg.MVIT.PATCH_2D:  # images: the mask builder puts the mask on the token grid when t != 1
        return
    geometry = TokenGeometry.from_config(cfg)
    size, tokens, grids = list(geometry.input_size), geometry.token_grid, geometry.block_grids
    window = list(cfg.AUG.MASK_WINDOW_SIZE)
    for depth_index in cfg.MASK.PRETRAIN_DEPTH:
        prediction = grids[depth_index]
        if len(window) != 3 or not (divides(window, prediction) and divides(window, tokens)):
            raise ConfigError(
                f"AUG.MASK_WINDOW_SIZE {window} must divide the prediction grid {list(prediction)} "
                f"(block MASK.PRETRAIN_DEPTH={depth_index}) and the token grid {list(tokens)} "
                f"(input {size}, MVIT.PATCH_STRIDE {list(cfg.MVIT.PATCH_STRIDE)}, MVIT.POOL_Q_STRIDE)"
            )


def check_schedule(cfg: CfgNode) -> None:
    solver = cfg.SOLVER
    if solver.MAX_EPOCH < 1 or not 0 <= solver.WARMUP_EPOCHS < solver.MAX_EPOCH:
        raise ConfigError(
            f"SOLVER.WARMUP_EPOCHS ({solver.WARMUP_EPOCHS}) must lie in [0, SOLVER.MAX_EPOCH = "
            f"{solver.MAX_EPOCH}), and SOLVER.MAX_EPOCH must be at least 1"
        )


# The largest learning rate accepted. The recipes under configs/ peak at 4e-3 and SGD
# recipes near 1; far above is a typo (1e38 overflows AdamW's update, 1e309 reads as inf).
MAX_LEARNING_RATE = 10.0
# Learning-rate keys: whether 0 is allowed (a schedule may end or start at 0, not peak there).
LEARNING_RATES: Dict[str, bool] = {
    "SOLVER.BASE_LR": False,
    "SOLVER.WARMUP_START_LR": True,
    "SOLVER.COSINE_END_LR": True,
    "PROBE.ATTENTIVE_LR": False,
}


def check_learning_rates(cfg: CfgNode) -> None:
    """Every learning rate a finite number in [0 or above it, MAX_LEARNING_RATE]."""
    problems = []
    for key, zero_allowed in LEARNING_RATES.items():
        value = _value(cfg, key)
        low_ok = value >= 0 if zero_allowed else value > 0
        if not (math.isfinite(value) and low_ok and value <= MAX_LEARNING_RATE):
            interval = f"[0, {MAX_LEARNING_RATE:g}]" if zero_allowed else f"(0, {MAX_LEARNING_RATE:g}]"
            problems.append(f"{key} is {value!r}; a learning rate must be a finite number in {interval}")
    raise_problems(problems)


def check_finetuning(cfg: CfgNode) -> None:
    """Mixup, layer decay and test views."""
    if cfg.MIXUP.ENABLE and cfg.MIXUP.ALPHA <= 0 and cfg.MIXUP.CUTMIX_ALPHA <= 0:
        raise ConfigError("MIXUP.ENABLE needs MIXUP.ALPHA > 0 (mixup) or MIXUP.CUTMIX_ALPHA > 0 (cutmix)")
    if not 0.0 < cfg.SOLVER.LAYER_DECAY <= 1.0:
        raise ConfigError(f"SOLVER.LAYER_DECAY must lie in (0, 1], got {cfg.SOLVER.LAYER_DECAY}")
    if cfg.TEST.NUM_ENSEMBLE_VIEWS < 1 or cfg.TEST.NUM_SPATIAL_CROPS < 1:
        raise ConfigError(
            f"TEST.NUM_ENSEMBLE_VIEWS ({cfg.TEST.NUM_ENSEMBLE_VIEWS}) and TEST.NUM_SPATIAL_CROPS "
            f"({cfg.TEST.NUM_SPATIAL_CROPS}) must be at least 1"
        )


def check_device_normalization(cfg: CfgNode) -> None:
    """DATA.NORMALIZE_ON_DEVICE leaves the loader's clips uint8. RandAugment acts on uint8
    frames and mixup / cutmix on the normalized batch in the step, so both still work;
    random erasing fills boxes of the normalized clip in the worker, which has none."""
    if cfg.DATA.NORMALIZE_ON_DEVICE and cfg.AUG.ENABLE and cfg.AUG.RE_PROB > 0:
        raise ConfigError(
            "DATA.NORMALIZE_ON_DEVICE keeps the loader's clips uint8, but random erasing (AUG.RE_PROB "
            f"{cfg.AUG.RE_PROB}) works on normalized float clips in the loader: set AUG.RE_PROB 0 or "
            "DATA.NORMALIZE_ON_DEVICE False"
        )


def check_available_features(cfg: CfgNode) -> None:
    """Keys whose features are not built yet fail here instead of being ignored."""
    if cfg.AUG.ENABLE and cfg.AUG.RE_SPLIT:
        raise ConfigError("not available yet: AUG.RE_SPLIT (an unerased first sample); set AUG.RE_SPLIT False")


def check_clips_per_video(cfg: CfgNode) -> None:
    """PySlowFast's clips per training video (DATA.TRAIN_CROP_NUM_TEMPORAL windows x
    DATA.TRAIN_CROP_NUM_SPATIAL x AUG.NUM_SAMPLE crops) and the loss-explosion stop."""
    counts = {
        "DATA.TRAIN_CROP_NUM_TEMPORAL": cfg.DATA.TRAIN_CROP_NUM_TEMPORAL,
        "DATA.TRAIN_CROP_NUM_SPATIAL": cfg.DATA.TRAIN_CROP_NUM_SPATIAL,
        "AUG.NUM_SAMPLE": cfg.AUG.NUM_SAMPLE,
    }
    for key, count in counts.items():
        if count < 1:
            raise ConfigError(f"{key} must be at least 1 (clips per training video multiply), got {count}")
    if cfg.TRAIN.KILL_LOSS_EXPLOSION_FACTOR < 0:
        raise ConfigError(
            f"TRAIN.KILL_LOSS_EXPLOSION_FACTOR must be >= 0 (0: off), got {cfg.TRAIN.KILL_LOSS_EXPLOSION_FACTOR}"
        )


def check_pyslowfast_features(cfg: CfgNode) -> None:
    """PySlowFast features slowmask does not build fail here rather than being ignored:
    Caffe2 checkpoints and the keys of unused_keys.REFUSED away from their defaults."""
    for key in ("TRAIN.CHECKPOINT_TYPE", "TEST.CHECKPOINT_TYPE"):
        value = cfg.TRAIN.CHECKPOINT_TYPE if key.startswith("TRAIN") else cfg.TEST.CHECKPOINT_TYPE
        if value == "caffe2":
            raise ConfigError(
                f'{key} "caffe2": Caffe2 checkpoints are out of scope for slowmask; load it in '
                f'PySlowFast, save it there as a PyTorch .pyth checkpoint and set {key} "pytorch"'
            )
        if value != "pytorch":
            raise ConfigError(f'{key} is {value!r}; supported: "pytorch"')
    refused = refused_keys_set(cfg)
    if refused:
        raise ConfigError(
            "these PySlowFast features are not built in slowmask and would change the model, the data or "
            f"the training: {'; '.join(refused)}"
        )


def check_data_loader(cfg: CfgNode) -> None:
    """The bad-data limit, the decode timeout and the list separator."""
    loader = cfg.DATA_LOADER
    if not cfg.DATA.PATH_LABEL_SEPARATOR:
        raise ConfigError("DATA.PATH_LABEL_SEPARATOR is empty; set it to the list's separator, e.g. ' ' or ','")
    if not 0.0 <= loader.MAX_BAD_FRACTION <= 1.0:
        raise ConfigError(f"DATA_LOADER.MAX_BAD_FRACTION must be in [0, 1], got {loader.MAX_BAD_FRACTION}")
    if loader.DECODE_TIMEOUT < 0:
        raise ConfigError(f"DATA_LOADER.DECODE_TIMEOUT must be >= 0 seconds (0: no limit), got {loader.DECODE_TIMEOUT}")


def check_distributed_training(cfg: CfgNode) -> None:
    """Timeouts, gradient accumulation, and batch norm across CPU processes."""
    for key in ("DIST_RENDEZVOUS_TIMEOUT_S", "DIST_COLLECTIVE_TIMEOUT_S"):
        if cfg[key] <= 0:
            raise ConfigError(f"{key} must be a positive number of seconds, got {cfg[key]}")
    if cfg.TRAIN.GRAD_ACCUM_STEPS < 1:
        raise ConfigError(f"TRAIN.GRAD_ACCUM_STEPS must be at least 1, got {cfg.TRAIN.GRAD_ACCUM_STEPS}")
    if cfg.BN.NORM_TYPE == "sync_batchnorm" and cfg.NUM_GPUS == 0 and cfg.NUM_SHARDS > 1:
        raise ConfigError(
            'BN.NORM_TYPE "sync_batchnorm" needs GPUs (torch\'s SyncBatchNorm does not run on the CPU) '
            'but NUM_GPUS is 0 with NUM_SHARDS > 1; use BN.NORM_TYPE "batchnorm"'
        )


def check_checkpointing(cfg: CfgNode) -> None:
    """Checkpoint periods and the number of checkpoints kept."""
    for key in ("TRAIN.CHECKPOINT_PERIOD_ITERS", "TRAIN.CHECKPOINT_KEEP_LAST"):
        value = cfg.TRAIN[key.split(".")[1]]
        if value < 0:
            raise ConfigError(f"{key} must be >= 0 (0: off), got {value}")
    if cfg.TRAIN.CHECKPOINT_PERIOD < 1:
        raise ConfigError(f"TRAIN.CHECKPOINT_PERIOD must be at least 1 epoch, got {cfg.TRAIN.CHECKPOINT_PERIOD}")


def check_nonfinite_skip(cfg: CfgNode) -> None:
    """The share of an epoch's steps that may be skipped for a non-finite loss."""
    share = cfg.TRAIN.NONFINITE_SKIP_MAX_SHARE
    if not 0.0 <= share <= 1.0:
        raise ConfigError(f"TRAIN.NONFINITE_SKIP_MAX_SHARE must be in [0, 1] (a share of an epoch's steps), "
                          f"got {share}")


# TEST.CHECKPOINT values: the weights the test after training reads from OUTPUT_DIR.
TEST_CHECKPOINTS = ("last", "best", "ema")
# WANDB.MODE values: W&B's own choice (""), or one of its modes.
WANDB_MODES = ("", "online", "offline", "disabled")


def check_model_ema(cfg: CfgNode) -> None:
    """MODEL.EMA's decays and device, TEST.CHECKPOINT's choice against the run that writes it, WANDB.MODE."""
    ema = cfg.MODEL.EMA
    problems = [choice_problem(cfg, "TEST.CHECKPOINT", TEST_CHECKPOINTS),
                choice_problem(cfg, "MODEL.EMA.DEVICE", ("", "cpu")), choice_problem(cfg, "WANDB.MODE", WANDB_MODES)]
    if not 0.0 <= ema.DECAY < 1.0:
        problems.append(f"MODEL.EMA.DECAY must be in [0, 1) (1 would never move), got {ema.DECAY}")
    if not 0.0 <= ema.WARMUP_START_DECAY <= ema.DECAY or ema.WARMUP_EPOCHS < 0:
        problems.append(f"MODEL.EMA.WARMUP_START_DECAY must be in [0, MODEL.EMA.DECAY] and MODEL.EMA.WARMUP_EPOCHS "
                        f">= 0, got {ema.WARMUP_START_DECAY} and {ema.WARMUP_EPOCHS}")
    if ema.ENABLE and cfg.MASK.ENABLE:
        problems.append("MODEL.EMA.ENABLE averages a fine-tuned classifier's weights; this config pretrains "
                        "(MASK.ENABLE True): set MODEL.EMA.ENABLE False (a method's own average has its own keys)")
    if cfg.TEST.CHECKPOINT == "ema" and cfg.TRAIN.ENABLE and not ema.ENABLE:
        problems.append("TEST.CHECKPOINT 'ema' tests the weights' moving average, which this run does not keep: "
                        "set MODEL.EMA.ENABLE True, or TEST.CHECKPOINT 'last' or 'best'")
    raise_problems(problems)


CHECKS: List[Callable[[CfgNode], None]] = [
    check_minimums,
    check_choices,
    check_job_size,  # before check_batch, which divides by the number of processes
    check_batch,
    check_patch_geometry,
    check_masking,
    check_schedule,
    check_learning_rates,
    check_finetuning,
    check_device_normalization,
    check_available_features,
    check_clips_per_video,
    check_pyslowfast_features,
    check_distributed_training,
    check_data_loader,
    check_checkpointing,
    check_nonfinite_skip,
    check_model_ema,
]
