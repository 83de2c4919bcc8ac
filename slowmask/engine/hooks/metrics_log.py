"""MetricsLog: the run's log lines and JSON records, per LOG_PERIOD steps, per epoch and
at the end (the run summary), with the device tensors of the steps read together.
"""

import logging
import os
from typing import Any, Dict, List, Optional, Tuple

import torch
from iopath.common.file_io import g_pathmgr

from slowmask import checkpoint
from slowmask.utils.logging import write_json_stats
from slowmask.utils.meters import Meters, format_eta, peak_memory_mb

from ..loop import Hook, TrainLoop
from .safety import batch_items, batch_skips

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


def batch_clips(batch: Any) -> int:
    """The clips a batch trains on: the rows of its "clip" tensor (repeated augmentation's
    AUG.NUM_SAMPLE clips of an item count each), else its items (batch_items)."""
    clip = batch.get("clip") if isinstance(batch, dict) else None
    if torch.is_tensor(clip):
        return int(clip.shape[0])
    return len(batch_items(batch))


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
        paths = [os.path.join(folder, name) for name in names]
        written = [path for path in paths if path.endswith(".pyth") or checkpoint.is_sharded_checkpoint(path)]
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
