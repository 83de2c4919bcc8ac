"""The hooks that set up each step: the learning rate (LRSchedule), the data epoch
(DataEpoch), the end of an accumulation cycle at the epoch's end (AccumulationEpochEnd),
and the step's metrics averaged over the ranks before anything logs them (RankMeanMetrics).
"""

from typing import Callable

import torch

from ..distributed import mean_over_ranks
from ..loop import Hook, TrainLoop
from ..step import TrainStep


class LRSchedule(Hook):
    """Sets the learning rate of every parameter group before each step, from the
    fractional epoch; a group's `lr_scale` (layer decay) multiplies it."""

    def __init__(self, optimizer: torch.optim.Optimizer, schedule: Callable[[float], float]) -> None:
        self.optimizer = optimizer
        self.schedule = schedule
        self.lr = 0.0

    def before_step(self, loop: TrainLoop) -> None:
        self.lr = self.schedule(loop.epoch + loop.iteration / loop.iters_per_epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr * group.get("lr_scale", 1.0)

    def after_step(self, loop: TrainLoop) -> None:
        loop.metrics["lr"] = self.lr


class DataEpoch(Hook):
    """Tells the loader (sampler and dataset) which epoch starts, so data order and
    per-item randomness depend on (seed, epoch, index) only."""

    def __init__(self, set_epoch: Callable[[int], None]) -> None:
        self.set_epoch = set_epoch

    def before_epoch(self, loop: TrainLoop) -> None:
        self.set_epoch(loop.epoch)


class AccumulationEpochEnd(Hook):
    """Before an epoch's last batch, tells the step to end its accumulation cycle there,
    so the epoch-end update and checkpoint see no pending gradient."""

    def __init__(self, step: TrainStep) -> None:
        self.step = step

    def before_step(self, loop: TrainLoop) -> None:
        if loop.iteration + 1 == loop.iters_per_epoch:
            self.step.mark_epoch_end()


class RankMeanMetrics(Hook):
    """Replaces the step's metrics by their means over all ranks (one all-reduce of a
    few floats per step), so rank 0 logs the job's loss, not its own share's. Every
    step, not only logged ones: the log's medians and epoch means span every step.
    Runs on every rank, before the hooks that log."""

    def after_step(self, loop: TrainLoop) -> None:
        loop.metrics = mean_over_ranks(loop.metrics)
