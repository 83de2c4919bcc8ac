"""Running statistics for log lines: windowed medians, totals and the ETA."""

import resource
import statistics
from collections import deque
from typing import Deque, Dict

import torch


class WindowedValue:
    """The last `window` values of a scalar, with their median and the overall mean."""

    def __init__(self, window: int) -> None:
        if window < 1:
            raise ValueError(f"the window must hold at least 1 value, got {window}")
        self.values: Deque[float] = deque(maxlen=window)
        self.total = 0.0
        self.count = 0

    def add(self, value: float) -> None:
        self.values.append(value)
        self.total += value
        self.count += 1

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else float("nan")


class Meters:
    """A WindowedValue per metric name, created on first use; `window` values each (the
    training log's is LOG_PERIOD, as PySlowFast's, so a line's medians cover the steps
    since the line before)."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.meters: Dict[str, WindowedValue] = {}

    def add(self, metrics: Dict[str, float]) -> None:
        for name, value in metrics.items():
            self.meters.setdefault(name, WindowedValue(self.window)).add(float(value))

    def medians(self) -> Dict[str, float]:
        return {name: meter.median for name, meter in self.meters.items()}

    def means(self) -> Dict[str, float]:
        return {name: meter.mean for name, meter in self.meters.items()}


def format_eta(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    return f"{days}d {clock}" if days else clock


def peak_memory_mb() -> float:
    """Peak GPU memory allocated by torch, or the process's peak resident memory on CPU."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
