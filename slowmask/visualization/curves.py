"""Training curves from runs' json_stats.log: one chart per metric, runs overlaid."""

import math
import os
import re
from typing import Dict, List, Optional, Sequence

from iopath.common.file_io import g_pathmgr
from PIL import Image

from slowmask.utils.logging import JSON_STATS_FILE, read_json_stats

from .chart import Line, line_chart, stack_vertically

# Metrics drawn when none are named: the loss, the learning rate, and accuracies/errors.
DEFAULT_METRICS = ("loss", "lr")
_QUALITY = re.compile(r"(acc|err|top\d)", re.IGNORECASE)
# Running bests (best_top1_acc, PySlowFast's min_top1_err) repeat a drawn curve; not drawn by default.
_RUNNING_BEST = ("best_", "min_", "max_")
# Accuracies and errors are percentages: their axis stays within these.
_PERCENT = re.compile(r"_(acc|err)$")
PERCENT_LIMITS = (0.0, 100.0)
_FRACTION = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def _count(value) -> Optional[int]:
    """The numerator of "3/20" (or an int): epochs and iterations are logged as fractions."""
    if isinstance(value, int):
        return value
    match = _FRACTION.match(str(value))
    return int(match.group(1)) if match else None


def epoch_position(record: dict) -> Optional[float]:
    """Where a record lies, in epochs: epoch "e/E" -> e; with iter "i/n" -> e - 1 + i / n."""
    epoch = _count(record.get("epoch"))
    if epoch is None:
        return None
    match = _FRACTION.match(str(record.get("iter", "")))
    if match:
        return epoch - 1 + int(match.group(1)) / max(int(match.group(2)), 1)
    return float(epoch)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def metric_series(records: Sequence[dict], metric: str) -> Dict[str, Line]:
    """{record _type: Line of `metric` over epochs} for every type that logs it."""
    series: Dict[str, Line] = {}
    for record in records:
        position, value = epoch_position(record), record.get(metric)
        if position is None or not _is_number(value):
            continue
        line = series.setdefault(record.get("_type", "?"), Line(record.get("_type", "?"), [], []))
        line.xs.append(position)
        line.ys.append(float(value))
    return series


def preferred_series(series: Dict[str, Line]) -> List[Line]:
    """Per-epoch records when there are any (means over the epoch), else the others."""
    epochs = [line for kind, line in sorted(series.items()) if kind.endswith("_epoch")]
    return epochs or [line for _, line in sorted(series.items())]


def available_metrics(runs: Dict[str, List[dict]]) -> List[str]:
    """DEFAULT_METRICS and accuracy/error metrics (not running bests) that some run logs."""
    keys = {key for records in runs.values() for record in records for key, value in record.items() if _is_number(value)}
    quality = sorted(key for key in keys if _QUALITY.search(key) and not key.startswith(_RUNNING_BEST))
    return [m for m in DEFAULT_METRICS if m in keys] + [m for m in quality if m not in DEFAULT_METRICS]


def split_of(kind: str) -> str:
    """The split a record type reports: "train_epoch" and "train_iter" -> "train",
    "val_epoch" -> "val"."""
    return kind.split("_", 1)[0]


def run_names(output_dirs: Sequence[str]) -> List[str]:
    """Short legend names: the folder names, or the paths when two folders share a name."""
    names = [os.path.basename(os.path.normpath(d)) for d in output_dirs]
    return names if len(set(names)) == len(names) else [os.path.normpath(d) for d in output_dirs]


def plot_runs(output_dirs: Sequence[str], metrics: Sequence[str] = ()) -> Image.Image:
    """One chart per metric (default: available_metrics) with every run's curve: a
    colour per run, the same in every chart; training solid, validation dashed; each
    legend entry names the split (and the run, when there are several)."""
    missing = [d for d in output_dirs if not g_pathmgr.exists(os.path.join(d, JSON_STATS_FILE))]
    if missing:
        raise FileNotFoundError(f"no {JSON_STATS_FILE} in {', '.join(missing)}: pass the OUTPUT_DIR of a training run")
    runs = {name: read_json_stats(d) for name, d in zip(run_names(output_dirs), output_dirs)}
    metrics = list(metrics) or available_metrics(runs)
    charts = []
    for metric in metrics:
        lines = []
        for run, (name, records) in enumerate(runs.items()):
            for line in preferred_series(metric_series(records, metric)):
                split = split_of(line.label)
                label = split if len(runs) == 1 else f"{name} {split}"
                lines.append(Line(label, line.xs, line.ys, colour=run, dashed=split != "train"))
        if not lines:
            raise ValueError(f"no run in {list(output_dirs)} logs the metric {metric!r}")
        limits = PERCENT_LIMITS if _PERCENT.search(metric) else None
        charts.append(line_chart(lines, metric, "epoch", y_limits=limits))
    if not charts:
        raise ValueError(f"no metric to plot in {list(output_dirs)}")
    return stack_vertically(charts)
