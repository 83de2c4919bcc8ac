"""Progress on a terminal: a tqdm bar over the run (epoch, iteration, loss, lr, it/s, ETA).

Where the output is not a terminal (a file, a pipe, a cluster job's log) the bar stays
off and MetricsLog's plain lines, one per LOG_PERIOD, are the progress: a bar's carriage
returns would only clutter a log file.
"""

import logging
import math
import shutil
import sys
from typing import Optional, TextIO

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from .loop import Hook, TrainLoop

# A short bar, so that the figures fit on an 80-column terminal.
BAR_FORMAT = "{desc}{percentage:3.0f}%|{bar:10}| {n}/{total} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
# Console log records of this logger (and its children) are printed above the bar.
PACKAGE_LOGGER = "slowmask"


def is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class ProgressBar(Hook):
    """A tqdm bar over the iterations left in the run, when `stream` (default
    sys.stderr) is a terminal; the console log lines then print above it."""

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
