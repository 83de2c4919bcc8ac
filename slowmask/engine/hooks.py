"""Hooks of the training loop: learning-rate schedule, data epoch, checkpoints, logs."""

import logging
import os
from typing import Any, Callable, Dict, Optional

import torch
from iopath.common.file_io import g_pathmgr
from torch import nn

from slowmask.utils.logging import write_json_stats
from slowmask.utils.meters import Meters, format_eta, peak_memory_mb

from . import checkpoint
from .loop import Hook, TrainLoop

logger = logging.getLogger(__name__)


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
    epochs and after the last one. The stored `epoch` is the 0-based index of the
    finished epoch (PySlowFast's convention); resuming starts at the next one."""

    def __init__(
        self,
        output_dir: str,
        period: int,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        cfg_yaml: str,
        scaler: Optional[Any] = None,
    ) -> None:
        self.output_dir = output_dir
        self.period = period
        self.model = model
        self.optimizer = optimizer
        self.cfg_yaml = cfg_yaml
        self.scaler = scaler

    def after_epoch(self, loop: TrainLoop) -> None:
        finished = loop.epoch + 1
        if finished % self.period and finished != loop.max_epoch:
            return
        checkpoint.save_checkpoint(
            checkpoint.checkpoint_path(self.output_dir, finished),
            self.model,
            self.optimizer,
            loop.epoch,
            self.cfg_yaml,
            self.scaler,
        )


class MetricsLog(Hook):
    """Every `period` iterations, a human line (epoch, iter, loss, lr, times, ETA,
    memory) and the same figures as a JSON line; an epoch summary after each epoch;
    a run summary at the end (time, losses, best epoch, checkpoints, skipped videos)."""

    def __init__(self, output_dir: str, period: int) -> None:
        self.output_dir = output_dir
        self.period = period
        self.meters = Meters()
        self.iterations_done = 0
        self.seconds_done = 0.0
        self.epoch_losses: list = []
        self.first_epoch = 0
        self.skipped: Dict[str, None] = {}  # unreadable videos, in the order met

    def before_epoch(self, loop: TrainLoop) -> None:
        self.meters = Meters()
        if not self.epoch_losses:
            self.first_epoch = loop.epoch

    def after_step(self, loop: TrainLoop) -> None:
        self._collect_skipped(loop.batch)
        metrics = {k: v for k, v in loop.metrics.items() if k != "lr"}
        self.meters.add({**metrics, "data_time": loop.data_time, "step_time": loop.step_time})
        self.iterations_done += 1
        self.seconds_done += loop.data_time + loop.step_time
        last = loop.iteration + 1 == loop.iters_per_epoch
        if (loop.iteration + 1) % self.period and not last:
            return
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
        stats["epoch_time"] = self.meters.meters["step_time"].total + self.meters.meters["data_time"].total
        self.epoch_losses.append(stats.get("loss", float("nan")))
        logger.info(self._human_line(stats))
        write_json_stats(self.output_dir, stats)

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

    def _collect_skipped(self, batch: Any) -> None:
        """Remember the unreadable videos a batch's items replaced (meta["skipped"])."""
        metas = batch.get("meta", []) if isinstance(batch, dict) else []
        for meta in metas:
            for path in meta.get("skipped", []) if isinstance(meta, dict) else []:
                self.skipped.setdefault(path, None)

    def _remaining_seconds(self, loop: TrainLoop) -> float:
        remaining = (loop.max_epoch - loop.epoch) * loop.iters_per_epoch - loop.iteration - 1
        return remaining * self.seconds_done / max(self.iterations_done, 1)

    @staticmethod
    def _human_line(stats: dict) -> str:
        def show(value: Any) -> str:
            return f"{value:.5g}" if isinstance(value, float) else str(value)

        return " ".join(f"{key}: {show(value)}" for key, value in stats.items() if key != "_type")
