"""Hooks that serve the training step: the epoch end of gradient accumulation, step
metrics averaged over ranks for logging, and the record of skipped non-finite steps."""

import logging
from typing import List, Tuple

from fvcore.common.config import CfgNode

from slowmask.utils.logging import write_json_stats

from .distributed import is_distributed, is_main_process, mean_over_ranks
from .loop import Hook, TrainLoop
from .step import TrainStep

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


def build_step_hooks(cfg: CfgNode, step: TrainStep) -> List[Hook]:
    """The hooks every rank runs around `step` (ahead of the logging hooks): the
    accumulation epoch end; rank means of the metrics when distributed; on rank 0,
    the skip log when TRAIN.NONFINITE_LOSS is "skip"."""
    hooks: List[Hook] = [AccumulationEpochEnd(step)]
    if is_distributed():
        hooks.append(RankMeanMetrics())
    if cfg.TRAIN.NONFINITE_LOSS == "skip" and is_main_process():
        hooks.append(NonFiniteSkipLog(cfg.OUTPUT_DIR))
    return hooks
