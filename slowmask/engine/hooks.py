"""The hooks of the training loop, in the order train.build_hooks lists them:

- LRSchedule, DataEpoch: the learning rate of each step, the epoch of the data;
- AccumulationEpochEnd, RankMeanMetrics, NonFiniteSkipLog, LossExplosionStop: around
  the step (its accumulation cycle, metrics averaged over ranks, skipped non-finite
  steps, the stop on an exploding loss);
- ProbeHook: representation probes of a pretraining run (the probes are in probe.py);
- MetricsLog, PeriodicCheckpoint, ProgressBar, TensorBoardScalars: logs, checkpoints and
  what shows a run as it goes (main process only);
- PeriodicValidation: a classifier's top-1 / top-5 on "val" (evaluate.py);
- BadDataGuard, NonFiniteSkipStop: the stop when too many videos are unreadable, or
  too many steps skipped for a non-finite loss;
- StopOnSignal: the checkpoint and stop on a preemption signal (with `run_from`).

Hooks take plain arguments; only train.build_hooks reads the config.
"""

import logging
import math
import os
import shutil
import signal
import sys
import threading
import time
from collections import deque
from contextlib import contextmanager
from typing import Any, Callable, Deque, Dict, Iterator, List, Optional, Sequence, Set, TextIO, Tuple

import torch
import torch.distributed as dist
from iopath.common.file_io import g_pathmgr
from torch import nn
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from slowmask.utils.errors import EXIT_STATUS, SlowmaskError, StoppedBeforeStart, StoppedBySignal
from slowmask.utils.logging import write_json_stats
from slowmask.utils.meters import Meters, format_eta, peak_memory_mb
from slowmask.utils.stop_signals import STOP_SIGNALS, handler_to_pass_on, names, pass_on, taken_over

from . import checkpoint
from .checkpoint import ResumePoint
from .distributed import any_rank, is_distributed, is_main_process, mean_over_ranks
from .evaluate import shown_accuracies
from .loop import Hook, TrainLoop
from .step import TrainStep

logger = logging.getLogger(__name__)


# Unreadable files named in a human epoch line (the JSON record has them all).
SKIPPED_SHOWN = 10

# Share of the iteration time above which the data wait is called the bottleneck.
INPUT_BOUND_SHARE = 0.5

# A short bar, so that the figures fit on an 80-column terminal.
BAR_FORMAT = "{desc}{percentage:3.0f}%|{bar:10}| {n}/{total} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"

# Console log records of this logger (and its children) are printed above the bar.
PACKAGE_LOGGER = "slowmask"

# Unreadable files quoted in a BadDataError.
BAD_DATA_EXAMPLES = 5

# The exit status of a run stopped by a signal after writing its checkpoint:
# EX_TEMPFAIL of sysexits.h, "a temporary failure; the user is invited to retry".
EXIT_PREEMPTED = EXIT_STATUS["preempted"]

# (0-based epoch, batches done or None at the epoch's end) -> path of the checkpoint written.
SaveCheckpoint = Callable[[int, Optional[int]], str]


# Schedule and data epoch.

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


# Around the step.

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


class TooManySkippedSteps(SlowmaskError, RuntimeError):
    """More than TRAIN.NONFINITE_SKIP_MAX_SHARE of an epoch's steps, or all of them, were
    skipped for a non-finite loss."""

    kind = "training"


class NonFiniteSkipStop(Hook):
    """Stops the run (TooManySkippedSteps, exit status 7) when more than `max_share` of
    an epoch's steps are skipped for a non-finite loss (metric `nonfinite_skip` 1), or
    every one of them: skipping a rare bad batch keeps a long run alive, skipping most of
    them trains nothing while the run would end "finished".

    The share is of the steps the epoch runs (for an epoch resumed part-way, the steps
    after the resume), so no minimum count of steps is needed: checked after each step
    against that fixed total, the share can only grow, and the run stops at the first
    step where the end-of-epoch check is certain to fail. Runs on every rank after the
    rank means: the ranks agree on each skip (see TrainStep), so all stop at one step.

    Args:
        max_share: in [0, 1]; 0 stops at the first skipped step, 1 only when all are.
        share_key: the config key of `max_share`, named in the error.
    """

    def __init__(self, max_share: float, share_key: str = "TRAIN.NONFINITE_SKIP_MAX_SHARE") -> None:
        if not 0.0 <= max_share <= 1.0:
            raise ValueError(f"{share_key} must be in [0, 1], got {max_share}")
        self.max_share = max_share
        self.share_key = share_key
        self.steps = self.skipped = self.epoch_steps = 0

    def before_epoch(self, loop: TrainLoop) -> None:
        self.steps = self.skipped = 0

    def after_step(self, loop: TrainLoop) -> None:
        if self.steps == 0:  # the epoch's first step here: a resumed epoch starts part-way
            self.epoch_steps = loop.iters_per_epoch - loop.iteration
        self.steps += 1
        self.skipped += int(loop.metrics.get("nonfinite_skip", 0.0) >= 1.0)
        if self.skipped > self.max_share * self.epoch_steps or self.skipped == self.epoch_steps:
            raise TooManySkippedSteps(self._message(loop))

    def _message(self, loop: TrainLoop) -> str:
        so_far = f" so far ({self.epoch_steps} in the epoch)" if self.steps < self.epoch_steps else ""
        limit = ("all of the epoch's steps" if self.skipped == self.epoch_steps
                 else f"{self.skipped / self.epoch_steps:.0%} of the epoch's steps, more than {self.share_key} = "
                      f"{self.max_share:g}")
        return (
            f"epoch {loop.epoch + 1}, iteration {loop.iteration + 1}: {self.skipped} of the {self.steps} steps "
            f"run{so_far} were skipped for a non-finite loss, {limit}: the training diverges (the checkpoints "
            "written so far are intact). Lower SOLVER.BASE_LR or clip the gradients (SOLVER.CLIP_GRAD_L2NORM), "
            f"find the first bad step with TRAIN.NONFINITE_LOSS stop, or raise {self.share_key}"
        )


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


# Representation probes.

class ProbeHook(Hook):
    """Every `period` epochs (and after the last), `evaluate()` -> {probe: top-1 %}
    (e.g. {"knn": .., "linear": ..}), logged, written as a "probe_epoch" JSON line with
    <probe>_top1_acc keys (so tools/plot.py draws them) and, with a `writer`, as
    TensorBoard scalars probe/<probe>_top1_acc. Every rank calls `evaluate` (features
    are gathered across ranks); only the main process writes.

    Its time is logged beside the epoch's (from this hook's before_epoch to its
    after_epoch), so its cost is visible. `prepare()`, if given, runs before training
    (e.g. decoding the probe sets once). `chance`, if given (100 / the number of classes,
    evaluate.chance_top1), is logged beside the scores and written as "chance".
    """

    def __init__(
        self,
        evaluate: Callable[[], Dict[str, float]],
        period: int,
        output_dir: str,
        writer: Any = None,
        prepare: Optional[Callable[[], None]] = None,
        chance: Optional[float] = None,
    ) -> None:
        if period < 1:
            raise ValueError(f"PROBE.PERIOD must be at least 1, got {period}")
        self.chance = chance
        self.evaluate = evaluate
        self.period = period
        self.output_dir = output_dir
        self.writer = writer
        self.prepare = prepare
        self.epoch_start = time.perf_counter()

    def before_train(self, loop: TrainLoop) -> None:
        if self.prepare is not None:
            start = time.perf_counter()
            with torch.random.fork_rng(devices=[]):
                self.prepare()
            logger.info("probe sets ready in %.1f s", time.perf_counter() - start)

    def before_epoch(self, loop: TrainLoop) -> None:
        self.epoch_start = time.perf_counter()

    def after_epoch(self, loop: TrainLoop) -> None:
        finished = loop.epoch + 1
        if finished % self.period and finished != loop.max_epoch:
            return
        start = time.perf_counter()
        epoch_seconds = start - self.epoch_start
        with torch.random.fork_rng(devices=[]):  # the run's data order and masks must not depend on the probe
            scores = self.evaluate()
        seconds = time.perf_counter() - start
        if not is_main_process():
            return
        stats = {"_type": "probe_epoch", "epoch": f"{finished}/{loop.max_epoch}",
                 **{f"{name}_top1_acc": value for name, value in scores.items()},
                 "probe_time": seconds, "epoch_time": epoch_seconds}
        shown = ", ".join(f"{name} top-1 {value:.2f} %" for name, value in scores.items())
        if self.chance is not None:
            stats["chance"] = self.chance
            shown += f" (chance {self.chance:.2f} %)"
        logger.info("probe after epoch %d: %s (%.1f s, %.0f %% of the epoch's %.1f s)",
                    finished, shown, seconds, 100 * seconds / max(epoch_seconds, 1e-9), epoch_seconds)
        write_json_stats(self.output_dir, stats)
        if self.writer is not None:
            for name, value in scores.items():
                self.writer.add_scalar(f"probe/{name}_top1_acc", value, finished)
            self.writer.flush()

    def after_train(self, loop: TrainLoop) -> None:
        if self.writer is not None:
            self.writer.close()


# Logs and checkpoints.

def as_floats(rows: List[Dict[str, Any]]) -> List[Dict[str, float]]:
    """The steps' metrics with their tensors read in one transfer per device (a GPU's
    scalars would each make the host wait for it)."""
    tensors: Dict[Any, List[torch.Tensor]] = {}
    for metrics in rows:
        for value in metrics.values():
            if torch.is_tensor(value):
                tensors.setdefault(value.device, []).append(value.detach().double().reshape(()))
    read = {device: iter(torch.stack(group).tolist()) for device, group in tensors.items()}
    return [{name: next(read[value.device]) if torch.is_tensor(value) else float(value)
             for name, value in metrics.items()} for metrics in rows]


class MetricsLog(Hook):
    """Every `period` iterations, a human line (epoch, iter, loss, lr, times, ETA,
    memory) and the same figures as a JSON line; each metric there (loss, data_time,
    step_time ...) is the median of the epoch's last `period` steps, as PySlowFast's
    window is LOG_PERIOD: with period 1 the step's own value.

    After each epoch a summary: the means over its steps, the data-wait and compute
    totals, the clips trained and the throughput (clips / epoch_time, of this process and
    of the job), the unreadable videos it skipped. The run's first epoch, when the run
    resumed part-way through it, is marked partial ("epoch: 2/10 (resumed after iteration
    5 of 8: 3 steps)", JSON `partial` and `resumed_after_iter`): its means cover only the
    steps run since. At the end a run summary (time, whole epochs and the partial one,
    losses, best epoch, checkpoints, skipped videos, whether data loading or compute took
    most of the time). The steps' device tensors are kept until a log line and read then,
    all together.

    Args:
        world_size: processes of the job. Each trains an equal share of every batch
            (the training loader drops the incomplete last batch), so the job's
            throughput is this times the main process's.
    """

    def __init__(self, output_dir: str, period: int, world_size: int = 1) -> None:
        self.output_dir = output_dir
        self.period = period
        self.world_size = world_size
        self.meters = Meters(period)
        self.iterations_done = 0
        self.seconds_done = 0.0
        self.epoch_losses: list = []
        self.first_epoch = 0
        self.skipped: Dict[str, None] = {}  # unreadable videos, in the order met
        self.epoch_skipped: Dict[str, None] = {}
        self.epoch_replaced = 0  # items of the epoch that needed a replacement video
        self.epoch_clips = 0  # clips this process trained on in the epoch
        self.resumed_after = 0  # batches of the epoch run before this run resumed it (0: a whole epoch)
        self.partial: Optional[Tuple[int, int, int, int]] = None  # (epoch, resumed after, steps, of)
        self.data_seconds = self.step_seconds = 0.0
        self.unread: List[Dict[str, Any]] = []  # metrics of the steps since the last log line

    def before_epoch(self, loop: TrainLoop) -> None:
        self.meters = Meters(self.period)
        self.unread = []
        self.epoch_skipped, self.epoch_replaced, self.epoch_clips = {}, 0, 0
        self.resumed_after = 0 if self.epoch_losses else loop.start_iteration
        if not self.epoch_losses:
            self.first_epoch = loop.epoch

    def after_step(self, loop: TrainLoop) -> None:
        self._collect_skipped(loop.batch)
        self.epoch_clips += batch_clips(loop.batch)
        self.data_seconds += loop.data_time
        self.step_seconds += loop.step_time
        metrics = {k: v for k, v in loop.metrics.items() if k != "lr"}
        self.unread.append({**metrics, "data_time": loop.data_time, "step_time": loop.step_time})
        self.iterations_done += 1
        self.seconds_done += loop.data_time + loop.step_time
        last = loop.iteration + 1 == loop.iters_per_epoch
        if (loop.iteration + 1) % self.period and not last:
            return
        for step_metrics in as_floats(self.unread):
            self.meters.add(step_metrics)
        self.unread = []
        stats = {
            "_type": "train_iter",
            "epoch": f"{loop.epoch + 1}/{loop.max_epoch}",
            "iter": f"{loop.iteration + 1}/{loop.iters_per_epoch}",
            **self.meters.medians(),
            "lr": loop.metrics.get("lr", float("nan")),
            "eta": format_eta(self._remaining_seconds(loop)),
            "mem_mb": round(peak_memory_mb()),
        }
        logger.info(self._human_line(stats))
        write_json_stats(self.output_dir, stats)

    def after_epoch(self, loop: TrainLoop) -> None:
        steps = loop.iters_per_epoch - self.resumed_after
        stats: Dict[str, Any] = {"_type": "train_epoch", "epoch": f"{loop.epoch + 1}/{loop.max_epoch}",
                                 "steps": steps, "partial": bool(self.resumed_after)}
        if self.resumed_after:
            stats["resumed_after_iter"] = self.resumed_after
            self.partial = (loop.epoch + 1, self.resumed_after, steps, loop.iters_per_epoch)
        stats.update(self.meters.means())
        stats["data_time_total"] = self.meters.meters["data_time"].total
        stats["step_time_total"] = self.meters.meters["step_time"].total
        stats["epoch_time"] = stats["data_time_total"] + stats["step_time_total"]
        stats.update(self._throughput(stats["epoch_time"]))
        stats["skipped"] = len(self.epoch_skipped)
        stats["replaced_items"] = self.epoch_replaced
        self.epoch_losses.append(stats.get("loss", float("nan")))
        names = list(self.epoch_skipped)
        more = f" and {len(names) - SKIPPED_SHOWN} more" if len(names) > SKIPPED_SHOWN else ""
        shown = f" ({', '.join(names[:SKIPPED_SHOWN])}{more})" if names else ""
        logger.info(self._human_line(self._epoch_line(stats, loop.iters_per_epoch)) + shown)
        write_json_stats(self.output_dir, {**stats, "skipped_files": names})

    def _throughput(self, seconds: float) -> Dict[str, float]:
        """The epoch's clips (this process's) and clips per second, of this process and of the job."""
        per_process = self.epoch_clips / seconds if seconds > 0 else float("nan")
        return {"clips": self.epoch_clips, "clips_per_s": per_process,
                "clips_per_s_total": per_process * self.world_size}

    def _epoch_line(self, stats: Dict[str, Any], iters_per_epoch: int) -> Dict[str, Any]:
        """The epoch record as the human line shows it: a partial epoch says so after its number."""
        shown = {key: value for key, value in stats.items() if key not in ("steps", "partial", "resumed_after_iter")}
        if stats["partial"]:
            shown["epoch"] += (f" (resumed after iteration {stats['resumed_after_iter']} of {iters_per_epoch}: "
                               f"{stats['steps']} steps)")
        return shown

    def after_train(self, loop: TrainLoop) -> None:
        if not self.epoch_losses:
            return
        best = min(range(len(self.epoch_losses)), key=lambda i: self.epoch_losses[i])
        whole = len(self.epoch_losses) - (self.partial is not None)
        rest, first = "", ""
        if self.partial is not None:
            epoch, resumed_after, steps, of = self.partial
            rest = f" and the last {steps} of the {of} steps of epoch {epoch} (resumed after iteration {resumed_after})"
            first = " (partial)"
        logger.info(
            "finished %d whole epoch(s)%s in %s; mean loss of the first epoch run %.5g%s, of the last %.5g, "
            "lowest %.5g (epoch %d)",
            whole, rest, format_eta(self.seconds_done), self.epoch_losses[0], first, self.epoch_losses[-1],
            self.epoch_losses[best], self.first_epoch + best + 1,
        )
        folder = checkpoint.checkpoint_dir(self.output_dir)
        names = sorted(g_pathmgr.ls(folder)) if g_pathmgr.exists(folder) else []
        written = [os.path.join(folder, name) for name in names if name.endswith(".pyth")]
        logger.info("checkpoints: %s", ", ".join(written) if written else "none")
        if self.skipped:
            logger.warning("skipped %d unreadable video(s): %s", len(self.skipped), ", ".join(self.skipped))
        else:
            logger.info("skipped videos: none")
        logger.info(self._time_split())

    def _time_split(self) -> str:
        """Which of data wait and compute took most of the iteration time."""
        total = self.data_seconds + self.step_seconds
        data_share = self.data_seconds / total if total > 0 else 0.0
        if data_share > INPUT_BOUND_SHARE:
            return (
                f"data loading took {data_share:.0%} of the iteration time ({format_eta(self.data_seconds)} "
                f"of {format_eta(total)}): the run is input-bound; raise DATA_LOADER.NUM_WORKERS, or "
                "decode smaller frames (DATA.DECODING_SHORT_SIZE)"
            )
        return (
            f"compute took {1 - data_share:.0%} of the iteration time ({format_eta(self.step_seconds)} of "
            f"{format_eta(total)}), data loading {data_share:.0%}: the run is compute-bound"
        )

    def _collect_skipped(self, batch: Any) -> None:
        """Remember the unreadable videos a batch's items replaced (meta["skipped"])."""
        _, replaced, paths = batch_skips(batch)
        self.epoch_replaced += replaced
        for path in paths:
            self.skipped.setdefault(path, None)
            self.epoch_skipped.setdefault(path, None)

    def _remaining_seconds(self, loop: TrainLoop) -> float:
        remaining = (loop.max_epoch - loop.epoch) * loop.iters_per_epoch - loop.iteration - 1
        return remaining * self.seconds_done / max(self.iterations_done, 1)

    @staticmethod
    def _human_line(stats: dict) -> str:
        def show(value: Any) -> str:
            return f"{value:.5g}" if isinstance(value, float) else str(value)

        return " ".join(f"{key}: {show(value)}" for key, value in stats.items() if key != "_type")


class PeriodicCheckpoint(Hook):
    """Writes OUTPUT_DIR/checkpoints/checkpoint_epoch_{epoch+1:05d}.pyth every `period`
    epochs and after the last one; with `iter_period` > 0 also
    checkpoint_epoch_{epoch+1:05d}.iter_{iteration:06d}.pyth every `iter_period`
    iterations within an epoch (while gradients are being accumulated, at the next
    optimizer update). The stored `epoch` is the 0-based index of the epoch (for an
    end-of-epoch file the finished one, PySlowFast's convention); a mid-epoch file also
    stores the items consumed, `items_after(epoch, batches done)`, when given. After each
    write only the newest `keep_last` such files are kept (0: all; checkpoint_best.pyth
    stays): the one just written and the newest intact others (see
    checkpoint.prune_checkpoints)."""

    def __init__(
        self,
        output_dir: str,
        period: int,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        cfg_yaml: str,
        scaler: Optional[Any] = None,
        iter_period: int = 0,
        keep_last: int = 0,
        items_after: Optional[Callable[[int, int], int]] = None,
    ) -> None:
        self.output_dir = output_dir
        self.period = period
        self.model = model
        self.optimizer = optimizer
        self.cfg_yaml = cfg_yaml
        self.scaler = scaler
        self.iter_period = iter_period
        self.keep_last = keep_last
        self.items_after = items_after
        self.intact: Set[str] = set()  # checkpoints this run wrote or found intact when pruning
        self._due = False

    def save(self, epoch: int, iteration: Optional[int] = None) -> str:
        """Write the checkpoint of 0-based `epoch` (at its end, or after `iteration`
        batches), prune old ones; returns its path."""
        path = checkpoint.checkpoint_path(self.output_dir, epoch + 1, iteration)
        items = None if iteration is None or self.items_after is None else self.items_after(epoch, iteration)
        checkpoint.save_checkpoint(
            path, self.model, self.optimizer, epoch, self.cfg_yaml, self.scaler, iteration=iteration, items=items
        )
        self.intact.add(path)
        checkpoint.prune_checkpoints(self.output_dir, self.keep_last, path, self.intact)
        return path

    def before_epoch(self, loop: TrainLoop) -> None:
        self._due = False

    def after_step(self, loop: TrainLoop) -> None:
        done = loop.iteration + 1
        if self.iter_period and done % self.iter_period == 0:
            self._due = True
        # The epoch's last batch is left to after_epoch; an update still pending is not saved.
        if not self._due or done == loop.iters_per_epoch or _pending(loop):
            return
        self._due = False
        _check_losses(loop)
        self.save(loop.epoch, done)

    def after_epoch(self, loop: TrainLoop) -> None:
        finished = loop.epoch + 1
        if finished % self.period and finished != loop.max_epoch:
            return
        _check_losses(loop)
        self.save(loop.epoch)


def _check_losses(loop: TrainLoop) -> None:
    """On a GPU the step reads its losses one step late: every one is read before weights
    are saved, so that no checkpoint holds an update made from a non-finite loss."""
    check = getattr(loop.step, "raise_if_nonfinite", None)
    if check is not None:
        check()


# Showing the run as it goes.

def is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class ProgressBar(Hook):
    """A tqdm bar over the iterations left in the run (epoch, iteration, loss, lr, it/s,
    ETA), when `stream` (default sys.stderr) is a terminal; the console log lines then
    print above it. Where the output is not a terminal (a file, a pipe, a cluster job's
    log) the bar stays off and MetricsLog's plain lines, one per LOG_PERIOD, are the
    progress: a bar's carriage returns would only clutter a log file."""

    def __init__(self, stream: Optional[TextIO] = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.bar: Optional[tqdm] = None
        self._redirect = None

    def before_epoch(self, loop: TrainLoop) -> None:
        if self.bar is not None or not is_terminal(self.stream):
            return
        self._redirect = logging_redirect_tqdm([logging.getLogger(PACKAGE_LOGGER)])
        self._redirect.__enter__()
        remaining = (loop.max_epoch - loop.epoch) * loop.iters_per_epoch - loop.start_iteration
        # shutil's size: the terminal's, or COLUMNS x LINES (80 x 24) where a pseudo-terminal
        # reports 0 x 0, which would make tqdm draw nothing.
        size = shutil.get_terminal_size()
        self.bar = tqdm(total=remaining, file=self.stream, unit="it", ncols=size.columns, nrows=size.lines,
                        bar_format=BAR_FORMAT)

    def after_step(self, loop: TrainLoop) -> None:
        if self.bar is None:
            return
        self.bar.set_description(f"epoch {loop.epoch + 1}/{loop.max_epoch}", refresh=False)
        self.bar.set_postfix(
            iter=f"{loop.iteration + 1}/{loop.iters_per_epoch}",
            loss=f"{loop.metrics.get('loss', math.nan):.4g}",
            lr=f"{loop.metrics.get('lr', math.nan):.3g}",
            refresh=False,
        )
        self.bar.update(1)

    def after_train(self, loop: TrainLoop) -> None:
        if self.bar is None:
            return
        self.bar.close()
        self._redirect.__exit__(None, None, None)
        self.bar = self._redirect = None


def summary_writer(log_dir: str) -> Any:
    """torch.utils.tensorboard's SummaryWriter on `log_dir`, or an ImportError that says
    what to install (TensorBoard is an optional dependency)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        raise ImportError(
            "TENSORBOARD.ENABLE is True but the tensorboard package is not installed: "
            "pip install tensorboard (or pip install -e \".[tensorboard]\"), or set TENSORBOARD.ENABLE False"
        ) from error
    return SummaryWriter(log_dir=log_dir)


class TensorBoardScalars(Hook):
    """Writes every step's metrics as train/<name> at the global step, and each epoch's
    means as train_epoch/<name> at the epoch number. `writer` has SummaryWriter's
    add_scalar / flush / close."""

    def __init__(self, writer: Any) -> None:
        self.writer = writer
        self.sums: Dict[str, float] = {}
        self.count = 0

    def before_epoch(self, loop: TrainLoop) -> None:
        self.sums, self.count = {}, 0

    def after_step(self, loop: TrainLoop) -> None:
        step = loop.epoch * loop.iters_per_epoch + loop.iteration + 1
        for name, value in loop.metrics.items():
            self.writer.add_scalar(f"train/{name}", value, step)
            self.sums[name] = self.sums.get(name, 0.0) + float(value)
        self.count += 1

    def after_epoch(self, loop: TrainLoop) -> None:
        for name, total in self.sums.items():
            self.writer.add_scalar(f"train_epoch/{name}", total / max(self.count, 1), loop.epoch + 1)
        self.writer.flush()

    def after_train(self, loop: TrainLoop) -> None:
        self.writer.close()


# Validation.

class PeriodicValidation(Hook):
    """Every `period` epochs and after the last one, the classifier's top-1 / top-5 on
    the "val" split (one view per video), logged and written as a JSON line; the
    checkpoint of the best top-1 so far is kept beside the periodic ones (`save_best`,
    OUTPUT_DIR/checkpoints/checkpoint_best.pyth). In a multi-process job the hook runs in
    every process, each scoring its share of the videos; the main process logs and writes.

    Args:
        evaluate: () -> metrics with "top1", "num_videos" and, with more than 5 classes,
            "top5" (see evaluate.evaluate);
            in a multi-process job a collective that every process calls.
        period: validate after every `period`-th epoch (and the last).
        output_dir: where json_stats.log is.
        save_best: (finished epoch, 0-based) -> None, writes the best checkpoint; called
            when top-1 beats every earlier validation of this run.
        writes: whether this process logs, writes the JSON line and saves the best
            checkpoint (the main process of the job); the others only take part.
    """

    def __init__(
        self,
        evaluate: Callable[[], Dict[str, Any]],
        period: int,
        output_dir: str,
        save_best: Optional[Callable[[int], None]] = None,
        writes: bool = True,
    ) -> None:
        if period < 1:
            raise ValueError(f"TRAIN.EVAL_PERIOD must be at least 1, got {period}")
        self.evaluate = evaluate
        self.period = period
        self.output_dir = output_dir
        self.save_best = save_best
        self.writes = writes
        self.best_top1 = float("-inf")

    def after_epoch(self, loop: TrainLoop) -> None:
        finished = loop.epoch + 1
        if finished % self.period and finished != loop.max_epoch:
            return
        metrics = self.evaluate()
        improved = metrics["top1"] > self.best_top1
        if improved:
            self.best_top1 = metrics["top1"]
        if self.writes:
            self._report(loop, metrics, improved)

    def _report(self, loop: TrainLoop, metrics: Dict[str, Any], improved: bool) -> None:
        finished = loop.epoch + 1
        stats = {"_type": "val_epoch", "epoch": f"{finished}/{loop.max_epoch}", "top1_acc": metrics["top1"]}
        if "top5" in metrics:  # not with 5 classes or fewer (see evaluate.accuracy)
            stats["top5_acc"] = metrics["top5"]
        stats.update(num_videos=metrics["num_videos"], best_top1_acc=self.best_top1)
        logger.info(
            "validation after epoch %d: %s (%d videos); best top-1 %.2f %%",
            finished, shown_accuracies(metrics), metrics["num_videos"], self.best_top1,
        )
        write_json_stats(self.output_dir, stats)
        if improved and self.save_best is not None:
            self.save_best(loop.epoch)


# Bad data.

class BadDataError(SlowmaskError, RuntimeError):
    """Too large a fraction of an epoch's items needed a replacement video."""

    kind = "data"


def batch_items(batch: Any) -> List[dict]:
    """The metas of the items in a batch, one per item (collate_clips repeats an item's
    meta for each of its NUM_SAMPLE rows, consecutively; those count once). Empty for a
    batch without metas."""
    metas = batch.get("meta", []) if isinstance(batch, dict) else []
    items: List[dict] = []
    for meta in metas:
        if not isinstance(meta, dict):
            continue
        if items and (meta is items[-1] or meta == items[-1]):
            continue
        items.append(meta)
    return items


def batch_skips(batch: Any) -> Tuple[int, int, List[str]]:
    """(items, items that needed a replacement, the unreadable paths they met) of a batch."""
    items = batch_items(batch)
    replaced = [meta["skipped"] for meta in items if meta.get("skipped")]
    return len(items), len(replaced), [path for skipped in replaced for path in skipped]


def batch_clips(batch: Any) -> int:
    """The clips a batch trains on: the rows of its "clip" tensor (repeated augmentation's
    AUG.NUM_SAMPLE clips of an item count each), else its items (batch_items)."""
    clip = batch.get("clip") if isinstance(batch, dict) else None
    if torch.is_tensor(clip):
        return int(clip.shape[0])
    return len(batch_items(batch))


class BadDataGuard(Hook):
    """Stops the run when more than `max_fraction` of an epoch's items needed a
    replacement video: bad data never kills a run, until there is too much of it.

    The datasets replace an unreadable video by another one and record it in the item's
    `meta["skipped"]` (see slowmask.data.datasets.clip_dataset). A few corrupt files are normal in a
    large download; a third of the dataset missing is a broken mount or a wrong path, and
    training on what is left would silently learn from another distribution.

    Checked after each step against the items the whole epoch will
    load (the fraction can then only grow, so an early stop is certain to be right) and
    at the end of the epoch.

    In a distributed run every process checks its own share of the data.

    Args:
        max_fraction: in [0, 1]; 1 never stops.
        limit_key: the config key of `max_fraction`, named in the error.
    """

    def __init__(self, max_fraction: float, limit_key: str = "DATA_LOADER.MAX_BAD_FRACTION") -> None:
        if not 0.0 <= max_fraction <= 1.0:
            raise ValueError(f"{limit_key} must be in [0, 1], got {max_fraction}")
        self.max_fraction = max_fraction
        self.limit_key = limit_key
        self.items = self.replaced = 0
        self.paths: Dict[str, None] = {}

    def before_epoch(self, loop: TrainLoop) -> None:
        self.items = self.replaced = 0
        self.paths = {}

    def after_step(self, loop: TrainLoop) -> None:
        items, replaced, paths = batch_skips(loop.batch)
        self.items += items
        self.replaced += replaced
        self.paths.update(dict.fromkeys(paths))
        remaining = loop.iters_per_epoch - loop.iteration - 1
        self._check(loop, self.items + remaining * items)

    def after_epoch(self, loop: TrainLoop) -> None:
        self._check(loop, self.items)

    def _check(self, loop: TrainLoop, epoch_items: int) -> None:
        """Raise BadDataError when the replaced items exceed the limit out of `epoch_items`."""
        if not self.replaced or self.replaced <= self.max_fraction * epoch_items:
            return
        examples = list(self.paths)[:BAD_DATA_EXAMPLES]
        more = f" and {len(self.paths) - len(examples)} more" if len(self.paths) > len(examples) else ""
        raise BadDataError(
            f"epoch {loop.epoch + 1}, iteration {loop.iteration + 1}: {self.replaced} of the "
            f"{self.items} items loaded so far ({self.replaced / max(self.items, 1):.0%}; {epoch_items} "
            f"in the epoch) needed a replacement for an unreadable video, more than {self.limit_key} = "
            f"{self.max_fraction:g} of the epoch; {len(self.paths)} unreadable file(s), e.g. "
            f"{', '.join(examples)}{more}. Check the dataset's files and paths, or raise {self.limit_key}"
        )


# Preemption.

class TrainingPreempted(SlowmaskError, RuntimeError):
    """The run stopped on a signal after writing `checkpoint` (on rank 0; None elsewhere)."""

    kind = "preempted"

    def __init__(self, message: str, checkpoint: Optional[str]) -> None:
        super().__init__(message)
        self.checkpoint = checkpoint


class StopOnSignal(Hook):
    """Stops the loop after the first step (or epoch end) that follows a stop signal,
    once no gradients are pending, writing a checkpoint there through `save` (given on
    rank 0 only), so that the requeued job resumes with TRAIN.AUTO_RESUME. Install the
    handlers around the loop with `catching_signals()`. Before the first step begins, a
    signal raises StoppedBeforeStart at once (nothing to save); a Ctrl-C (SIGINT) while a
    stop is pending raises StoppedBySignal at once (a second Ctrl-C aborts, without the
    checkpoint; the ones written before stay).

    The signals are those of utils.stop_signals: SIGTERM, SIGUSR1 (what SLURM sends before
    it preempts or times out a job, `--signal=USR1@90`), SIGUSR2 (submitit's) and SIGINT.
    A handler installed before the run (submitit's, which requeues the job) is handed the
    signal once the checkpoint is written (`hand_over`). The handler only records the
    signal; this hook acts on it between steps. In a multi-process job the ranks agree on
    it after every step (an all-reduce of one number), so that all of them stop after the
    same iteration; rank 0 writes the checkpoint while the others wait. While gradients
    are being accumulated the stop waits for the next optimizer update. tools/run_net.py
    then exits with EXIT_PREEMPTED.

    Args:
        save: writes the checkpoint of (0-based epoch, batches done or None); None on
            ranks that do not write checkpoints.
    """

    def __init__(self, save: Optional[SaveCheckpoint], signals: Sequence[int] = STOP_SIGNALS) -> None:
        self.save = save
        self.signals = tuple(signals)
        self.received: Optional[int] = None  # the signal number, set by the handler
        self.started = False  # the first step has begun: a signal now asks for a checkpoint
        self.stopping = False  # agreed by all ranks
        self.stopped: Optional[TrainingPreempted] = None
        self.previous: Dict[int, Any] = {}  # the handlers before catching_signals

    @contextmanager
    def catching_signals(self) -> Iterator["StopOnSignal"]:
        """Record the signals while the block runs; the previous handlers come back after.

        A loader worker forked meanwhile inherits the handler, which does nothing there
        (the training loaders' workers ignore these signals, see data.build). Outside
        the main thread Python cannot install handlers: a warning says so."""
        if threading.current_thread() is not threading.main_thread():
            logger.warning("training outside the main thread: %s will not stop it with a checkpoint",
                           names(self.signals))
            yield self
            return
        owner = os.getpid()

        def record(signum: int, frame) -> None:
            if os.getpid() != owner:  # in a forked loader worker
                return
            if not self.started:
                pass_on(self.previous.get(signum), signum)
                raise StoppedBeforeStart(signum, signal.Signals(signum).name)
            if signum == signal.SIGINT and self.received is not None:
                raise StoppedBySignal(signum, self._aborted())
            self.received = signum  # no logging here: the handler may interrupt a log call

        taken = taken_over(self.signals)
        self.previous = {number: signal.getsignal(number) for number in taken}
        for number in taken:
            signal.signal(number, record)
        try:
            yield self
        finally:
            for number, handler in self.previous.items():
                signal.signal(number, handler)

    def _aborted(self) -> str:
        return (f"aborted by a second SIGINT while stopping on {signal.Signals(self.received).name}: this stop's "
                "checkpoint may be missing, those written before are intact; run the same command again "
                "(TRAIN.AUTO_RESUME True) to continue from the newest")

    def hand_over(self) -> None:
        """Call the handler the received signal had before the run, when it was a Python
        function (submitit's requeue, which exits), now that the checkpoint is written."""
        if self.received is None:
            return
        handler = handler_to_pass_on(self.previous.get(self.received), self.received)
        if handler is not None:
            logger.info("handing %s to the handler installed before the run", signal.Signals(self.received).name)
            handler(self.received, None)

    def before_step(self, loop: TrainLoop) -> None:
        self.started = True

    def after_step(self, loop: TrainLoop) -> None:
        self.stopping = any_rank(self.received is not None) or self.stopping
        done = loop.iteration + 1
        # At the epoch's last batch the next boundary is the epoch's end (after_epoch).
        if self.stopping and done < loop.iters_per_epoch and not _pending(loop):
            self._stop(loop, done)

    def after_epoch(self, loop: TrainLoop) -> None:
        if self.stopping and not _pending(loop):
            self._stop(loop, None)

    def _stop(self, loop: TrainLoop, iteration: Optional[int]) -> None:
        path = self.save(loop.epoch, iteration) if self.save is not None else None
        if is_distributed():
            dist.barrier()  # no rank leaves before the checkpoint is complete
        cause = signal.Signals(self.received).name if self.received is not None else "another rank's stop signal"
        where = f"epoch {loop.epoch + 1}, " + (f"after iteration {iteration}" if iteration else "at its end")
        message = (
            f"stopped on {cause} at {where}; checkpoint: {path or 'written by rank 0'}; exit status "
            f"{EXIT_PREEMPTED}; run the same command again (TRAIN.AUTO_RESUME True) to continue"
        )
        logger.warning(message)
        self.stopped = TrainingPreempted(message, path)
        loop.request_stop()


def _pending(loop: TrainLoop) -> bool:
    """Gradients accumulated for an optimizer update that has not happened yet."""
    return bool(getattr(loop.step, "pending_gradients", False))


def run_from(loop: TrainLoop, point: ResumePoint, stop: StopOnSignal) -> None:
    """Run `loop` from `point` (its generators restored right before the first batch)
    with the stop signals caught; raises TrainingPreempted when one stopped the run."""
    point.restore_generators()
    with stop.catching_signals():
        loop.run(point.epoch, point.iteration)
    if stop.stopped is not None:
        stop.hand_over()
        raise stop.stopped
