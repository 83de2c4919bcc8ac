"""TensorBoard scalars (TENSORBOARD.ENABLE): the figures of the log lines, per step and
per epoch. TensorBoard is an optional dependency (`pip install tensorboard`)."""

import logging
from typing import Any, Dict

from .loop import Hook, TrainLoop

logger = logging.getLogger(__name__)


def summary_writer(log_dir: str) -> Any:
    """torch.utils.tensorboard's SummaryWriter on `log_dir`, or an ImportError that says
    what to install."""
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
