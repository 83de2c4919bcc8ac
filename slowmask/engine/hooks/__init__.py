"""The hooks of the training loop, one module per concern, in the order
train.build_hooks lists them:

- schedule.py: LRSchedule, DataEpoch, AccumulationEpochEnd, RankMeanMetrics: the learning
  rate of each step, the epoch of the data, the accumulation cycle's end, the metrics
  averaged over ranks;
- safety.py: NonFiniteSkipLog, LossExplosionStop, and later BadDataGuard and
  NonFiniteSkipStop: skipped non-finite steps, an exploding loss, too many unreadable
  videos or skipped steps;
- evaluation.py: ProbeHook (representation probes of a pretraining run) and
  PeriodicValidation (a classifier's top-1 / top-5 on "val", the best checkpoint);
- model_ema.py: ModelEma, the moving average of a fine-tuned classifier's weights (MODEL.EMA),
  updated by the step after each update, validated beside the weights, written at the end;
- metrics_log.py: MetricsLog, the log lines and JSON records (main process only);
- checkpointing.py: PeriodicCheckpoint, the run's checkpoints with the hooks' states;
- progress.py: ProgressBar, TensorBoardScalars: what shows a run as it goes;
- wandb_log.py: WandbLog, json_stats.log's records, the config and the test in Weights & Biases;
- preemption.py: StopOnSignal, the checkpoint and stop on a preemption signal (with
  `run_from`), always the last hook.

Hooks take plain arguments; only train.build_hooks reads the config. A hook with a state
to resume implements Hook.state_dict / load_state_dict (engine/loop.py).
"""

from .checkpointing import PeriodicCheckpoint, SaveCheckpoint
from .evaluation import PeriodicValidation, ProbeHook
from .metrics_log import MetricsLog, as_floats, batch_clips
from .model_ema import ModelEma
from .preemption import EXIT_PREEMPTED, StopOnSignal, TrainingPreempted, run_from
from .progress import ProgressBar, TensorBoardScalars, summary_writer
from .safety import (
    BadDataError,
    BadDataGuard,
    LossExplosionError,
    LossExplosionStop,
    NonFiniteSkipLog,
    NonFiniteSkipStop,
    TooManySkippedSteps,
    batch_items,
    batch_skips,
)
from .schedule import AccumulationEpochEnd, DataEpoch, LRSchedule, RankMeanMetrics
from .wandb_log import WandbLog, WandbSettings, log_pictures, log_run_end, start_run

__all__ = [
    "EXIT_PREEMPTED",
    "AccumulationEpochEnd",
    "BadDataError",
    "BadDataGuard",
    "DataEpoch",
    "LRSchedule",
    "LossExplosionError",
    "LossExplosionStop",
    "MetricsLog",
    "ModelEma",
    "NonFiniteSkipLog",
    "NonFiniteSkipStop",
    "PeriodicCheckpoint",
    "PeriodicValidation",
    "ProbeHook",
    "ProgressBar",
    "RankMeanMetrics",
    "SaveCheckpoint",
    "StopOnSignal",
    "TensorBoardScalars",
    "TooManySkippedSteps",
    "TrainingPreempted",
    "WandbLog",
    "WandbSettings",
    "as_floats",
    "batch_clips",
    "batch_items",
    "batch_skips",
    "log_pictures",
    "log_run_end",
    "run_from",
    "start_run",
    "summary_writer",
]
