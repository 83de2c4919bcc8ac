"""Hooks of the training loop: learning-rate schedule, data epoch, checkpoints, logs."""

import logging
import os
from typing import Any, Callable, Dict, List, Optional

import torch
from iopath.common.file_io import g_pathmgr
from torch import nn

from slowmask.utils.logging import write_json_stats
from slowmask.utils.meters import Meters, format_eta, peak_memory_mb

from . import checkpoint
from .bad_data import batch_skips
from .loop import Hook, TrainLoop

logger = logging.getLogger(__name__)

# Unreadable files named in a human epoch line (the JSON record has them all).
SKIPPED_SHOWN = 10
# Share of the iteration time above which the data wait is called the bottleneck.
INPUT_BOUND_SHARE = 0.5


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


class PeriodicCheckpoint(Hook):
    """Writes OUTPUT_DIR/checkpoints/checkpoint_epoch_{epoch+1:05d}.pyth every `period`
    epochs and after the last one; with `iter_period` > 0 also
    checkpoint_epoch_{epoch+1:05d}.iter_{iteration:06d}.pyth every `iter_period`
    iterations within an epoch (while gradients are being accumulated, at the next
    optimizer update). The stored `epoch` is the 0-based index of the epoch (for an
    end-of-epoch file the finished one, PySlowFast's convention). After each write only
    the newest `keep_last` such files are kept (0: all; checkpoint_best.pyth stays)."""

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
    ) -> None:
        self.output_dir = output_dir
        self.period = period
        self.model = model
        self.optimizer = optimizer
        self.cfg_yaml = cfg_yaml
        self.scaler = scaler
        self.iter_period = iter_period
        self.keep_last = keep_last
        self._due = False

    def save(self, epoch: int, iteration: Optional[int] = None) -> str:
        """Write the checkpoint of 0-based `epoch` (at its end, or after `iteration`
        batches), prune old ones; returns its path."""
        path = checkpoint.checkpoint_path(self.output_dir, epoch + 1, iteration)
        checkpoint.save_checkpoint(
            path, self.model, self.optimizer, epoch, self.cfg_yaml, self.scaler, iteration=iteration
        )
        checkpoint.prune_checkpoints(self.output_dir, self.keep_last)
        return path

    def before_epoch(self, loop: TrainLoop) -> None:
        self._due = False

    def after_step(self, loop: TrainLoop) -> None:
        done = loop.iteration + 1
        if self.iter_period and done % self.iter_period == 0:
            self._due = True
        # The epoch's last batch is left to after_epoch; an update still pending is not saved.
        if not self._due or done == loop.iters_per_epoch or getattr(loop.step, "pending_gradients", False):
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


class MetricsLog(Hook):
    """Every `period` iterations, a human line (epoch, iter, loss, lr, times, ETA,
    memory) and the same figures as a JSON line; an epoch summary after each epoch
    (means, the data-wait and compute totals, the unreadable videos the epoch skipped);
    a run summary at the end (time, losses, best epoch, checkpoints, skipped videos,
    whether data loading or compute took most of the time). The steps' device tensors
    are kept until a log line and read then, all together."""

    def __init__(self, output_dir: str, period: int) -> None:
        self.output_dir = output_dir
        self.period = period
        self.meters = Meters()
        self.iterations_done = 0
        self.seconds_done = 0.0
        self.epoch_losses: list = []
        self.first_epoch = 0
        self.skipped: Dict[str, None] = {}  # unreadable videos, in the order met
        self.epoch_skipped: Dict[str, None] = {}
        self.epoch_replaced = 0  # items of the epoch that needed a replacement video
        self.data_seconds = self.step_seconds = 0.0
        self.unread: List[Dict[str, Any]] = []  # metrics of the steps since the last log line

    def before_epoch(self, loop: TrainLoop) -> None:
        self.meters = Meters()
        self.unread = []
        self.epoch_skipped, self.epoch_replaced = {}, 0
        if not self.epoch_losses:
            self.first_epoch = loop.epoch

    def after_step(self, loop: TrainLoop) -> None:
        self._collect_skipped(loop.batch)
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
        stats = {"_type": "train_epoch", "epoch": f"{loop.epoch + 1}/{loop.max_epoch}"}
        stats.update(self.meters.means())
        stats["data_time_total"] = self.meters.meters["data_time"].total
        stats["step_time_total"] = self.meters.meters["step_time"].total
        stats["epoch_time"] = stats["data_time_total"] + stats["step_time_total"]
        stats["skipped"] = len(self.epoch_skipped)
        stats["replaced_items"] = self.epoch_replaced
        self.epoch_losses.append(stats.get("loss", float("nan")))
        names = list(self.epoch_skipped)
        more = f" and {len(names) - SKIPPED_SHOWN} more" if len(names) > SKIPPED_SHOWN else ""
        shown = f" ({', '.join(names[:SKIPPED_SHOWN])}{more})" if names else ""
        logger.info(self._human_line(stats) + shown)
        write_json_stats(self.output_dir, {**stats, "skipped_files": names})

    def after_train(self, loop: TrainLoop) -> None:
        if not self.epoch_losses:
            return
        best = min(range(len(self.epoch_losses)), key=lambda i: self.epoch_losses[i])
        logger.info(
            "finished %d epoch(s) in %s; mean loss of the first epoch run %.5g, of the last %.5g, "
            "lowest %.5g (epoch %d)",
            len(self.epoch_losses), format_eta(self.seconds_done),
            self.epoch_losses[0], self.epoch_losses[-1], self.epoch_losses[best], self.first_epoch + best + 1,
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
