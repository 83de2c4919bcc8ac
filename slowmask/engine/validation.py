"""Validation during training (a hook): every `period` epochs and after the last one,
the classifier's top-1 / top-5 on the "val" split (one view per video), logged and
written as a JSON line; the checkpoint of the best top-1 so far is kept beside the
periodic ones, as OUTPUT_DIR/checkpoints/checkpoint_best.pyth. In a multi-process job
the hook runs in every process, each scoring its share of the videos; the main process
logs and writes."""

import logging
from typing import Any, Callable, Dict, List, Optional

import torch
from fvcore.common.config import CfgNode
from torch import nn

from slowmask.data import build_loader
from slowmask.utils.logging import write_json_stats

from . import checkpoint
from .distributed import is_main_process
from .evaluate import evaluate
from .loop import Hook, TrainLoop

logger = logging.getLogger(__name__)


class PeriodicValidation(Hook):
    """Args:
        evaluate: () -> metrics with "top1", "top5" and "num_videos" (see evaluate.evaluate);
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
        stats = {
            "_type": "val_epoch",
            "epoch": f"{finished}/{loop.max_epoch}",
            "top1_acc": metrics["top1"],
            "top5_acc": metrics["top5"],
            "num_videos": metrics["num_videos"],
            "best_top1_acc": self.best_top1,
        }
        logger.info(
            "validation after epoch %d: top-1 %.2f %%, top-5 %.2f %% (%d videos); best top-1 %.2f %%",
            finished, metrics["top1"], metrics["top5"], metrics["num_videos"], self.best_top1,
        )
        write_json_stats(self.output_dir, stats)
        if improved and self.save_best is not None:
            self.save_best(loop.epoch)


def build_validation_hooks(
    cfg: CfgNode, model: nn.Module, optimizer: torch.optim.Optimizer, device: torch.device, scaler: Any = None
) -> List[Hook]:
    """The validation hook of a classifier's training (none for pretraining, which has no
    labels to score). Every process of the job needs it: each scores its share of val."""
    if cfg.MASK.ENABLE:
        return []
    loader = build_loader(cfg, "val")

    def run() -> Dict[str, Any]:
        return evaluate(model, loader, device, cfg.MODEL.NUM_CLASSES, cfg.MODEL.HEAD_ACT, cfg.DATA.ENSEMBLE_METHOD)

    def save_best(epoch: int) -> None:
        path = checkpoint.best_checkpoint_path(cfg.OUTPUT_DIR)
        checkpoint.save_checkpoint(path, model, optimizer, epoch, cfg.dump(), scaler)

    return [PeriodicValidation(run, cfg.TRAIN.EVAL_PERIOD, cfg.OUTPUT_DIR, save_best, is_main_process())]
