"""What shows a run as it goes: a progress bar on a terminal (ProgressBar) and
TensorBoard scalars (TensorBoardScalars, `summary_writer`).
"""

import logging
import math
import shutil
import sys
from typing import Any, Dict, Optional, TextIO

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from ..loop import Hook, TrainLoop


# A short bar, so that the figures fit on an 80-column terminal.
BAR_FORMAT = "{desc}{percentage:3.0f}%|{bar:10}| {n}/{total} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"

# Console log records of this logger (and its children) are printed above the bar.
PACKAGE_LOGGER = "slowmask"


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
