"""Hooks that serve the training step: the epoch end of gradient accumulation, step
metrics averaged over ranks for logging, the record of skipped non-finite steps, and
the stop on an exploding loss."""

import logging
from collections import deque
from typing import Deque, List, Tuple

from fvcore.common.config import CfgNode

from slowmask.utils.logging import write_json_stats

from .distributed import is_distributed, is_main_process, mean_over_ranks
from .loop import Hook, TrainLoop
from .step import TrainStep
from slowmask.utils.errors import SlowmaskError

logger = logging.getLogger(__name__)

# TRAIN.NONFINITE_LOSS values.
NONFINITE_CHOICES = ("stop", "skip")


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


class NonFiniteSkipLog(Hook):
    """Logs each step skipped for a non-finite loss (metric `nonfinite_skip` 1) with its
    epoch and iteration, as a warning and a JSON line, and the list at the end."""

    def __init__(self, output_dir: str) -> None:
        self.output_dir = output_dir
        self.skipped: List[Tuple[int, int]] = []  # (epoch, iteration), 1-based

    def after_step(self, loop: TrainLoop) -> None:
        if loop.metrics.get("nonfinite_skip", 0.0) < 1.0:
            return
        self.skipped.append((loop.epoch + 1, loop.iteration + 1))
        logger.warning(
            "skipped the step at epoch %d, iteration %d: the loss is not finite (%d skipped so far)",
            loop.epoch + 1, loop.iteration + 1, len(self.skipped),
        )
        write_json_stats(self.output_dir, {
            "_type": "nonfinite_skip", "epoch": loop.epoch + 1, "iter": loop.iteration + 1,
        })

    def after_train(self, loop: TrainLoop) -> None:
        if self.skipped:
            where = ", ".join(f"epoch {e} iteration {i}" for e, i in self.skipped)
            logger.warning("skipped %d step(s) with a non-finite loss: %s", len(self.skipped), where)


class LossExplosionError(SlowmaskError, RuntimeError):
    """A step's loss exceeded TRAIN.KILL_LOSS_EXPLOSION_FACTOR times its recent mean."""

    kind = "training"


class LossExplosionStop(Hook):
    """Stops the run when a step's loss exceeds `factor` times the mean of the `window`
    steps before it in the same epoch (PySlowFast's TRAIN.KILL_LOSS_EXPLOSION_FACTOR:
    window 5, checked once the epoch has had 6 steps). Runs after the rank means, so every
    rank sees the same loss and stops at the same step."""

    def __init__(self, factor: float, window: int = 5) -> None:
        self.factor = factor
        self.recent: Deque[float] = deque(maxlen=window + 1)

    def before_epoch(self, loop: TrainLoop) -> None:
        self.recent.clear()

    def after_step(self, loop: TrainLoop) -> None:
        loss = float(loop.metrics["loss"])
        previous = list(self.recent)[1:] if len(self.recent) == self.recent.maxlen else []
        self.recent.append(loss)
        if previous and loss > self.factor * sum(previous) / len(previous):
            raise LossExplosionError(
                f"loss exploded at epoch {loop.epoch + 1}, iteration {loop.iteration + 1}: {loss:.4g} > "
                f"TRAIN.KILL_LOSS_EXPLOSION_FACTOR {self.factor:g} x {sum(previous) / len(previous):.4g} "
                f"(mean of the {len(previous)} steps before); lower SOLVER.BASE_LR or raise the factor (0: off)"
            )


def build_step_hooks(cfg: CfgNode, step: TrainStep) -> List[Hook]:
    """The hooks every rank runs around `step` (ahead of the logging hooks): the
    accumulation epoch end; rank means of the metrics when distributed; on rank 0,
    the skip log when TRAIN.NONFINITE_LOSS is "skip"; the loss-explosion stop when
    TRAIN.KILL_LOSS_EXPLOSION_FACTOR > 0."""
    hooks: List[Hook] = [AccumulationEpochEnd(step)]
    if is_distributed():
        hooks.append(RankMeanMetrics())
    if cfg.TRAIN.NONFINITE_LOSS == "skip" and is_main_process():
        hooks.append(NonFiniteSkipLog(cfg.OUTPUT_DIR))
    if cfg.TRAIN.KILL_LOSS_EXPLOSION_FACTOR > 0:
        hooks.append(LossExplosionStop(cfg.TRAIN.KILL_LOSS_EXPLOSION_FACTOR))
    return hooks
