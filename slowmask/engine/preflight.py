"""The preflight: everything a run will read, checked before any model is built.

A multi-day run must not fail at its end because its test list is missing. Before the
first step, each split the run will use (train when TRAIN.ENABLE; val for a classifier's
validation during training; test when TEST.ENABLE) is built as the run would build it:
its list exists and parses, its labels lie in [0, MODEL.NUM_CLASSES) for a classifier,
its first listed files exist, and a few items decode. The checkpoints it will load
(TRAIN.CHECKPOINT_FILE_PATH for a new run, TEST.CHECKPOINT_FILE_PATH) must exist, and the
devices NUM_GPUS asks for must be visible. Every problem is collected and reported at once, each with the key to
change; `tools/run_net.py --check` runs the preflight alone.
"""

import logging
import os
from dataclasses import dataclass, field
from typing import Any, List, Sequence

from fvcore.common.config import CfgNode
from torch.utils.data import Dataset, IterableDataset

from slowmask.data import build_dataset
from slowmask.data.video_list import missing_file_advice
from slowmask.utils.errors import SlowmaskError, problems_text

from . import checkpoint
from .launch import device_problem

logger = logging.getLogger(__name__)

# Items decoded per split (first, middle, last): enough to catch a wrong folder, a wrong
# backend or undecodable files, cheap enough to run before every job.
ITEMS_TRIED = 3
# Listed files whose existence is checked per split.
FILES_LOOKED_FOR = 20


class PreflightError(SlowmaskError, ValueError):
    """The run would fail: one or more problems with its data, checkpoints or devices,
    each in `problems`; `kind` is the first one's (see slowmask.utils.errors)."""

    def __init__(self, problems: Sequence[str], kind: str = "data") -> None:
        self.problems = list(problems)
        self.kind = kind
        super().__init__(problems_text(self.problems, "the run cannot start"))


@dataclass
class SplitReport:
    split: str
    items: int = 0
    problems: List[str] = field(default_factory=list)


def splits_in_use(cfg: CfgNode) -> List[str]:
    """The splits the run reads: "train" (TRAIN.ENABLE), "val" (a classifier's validation
    during training: TRAIN.ENABLE without MASK.ENABLE), "test" (TEST.ENABLE)."""
    splits = []
    if cfg.TRAIN.ENABLE:
        splits.append("train")
        if not cfg.MASK.ENABLE:
            splits.append("val")
    if cfg.TEST.ENABLE:
        splits.append("test")
    return splits


def preflight(cfg: CfgNode) -> List[SplitReport]:
    """Check every split the run uses and the devices; raise PreflightError listing
    every problem, else return what was checked."""
    device = device_problem(cfg)
    found = {
        "config": [device] if device else [],
        "checkpoint": _checkpoint_problems(cfg),
    }
    reports = [check_split(cfg, split) for split in splits_in_use(cfg)]
    found["data"] = [problem for report in reports for problem in report.problems]
    problems = [problem for kind_problems in found.values() for problem in kind_problems]
    if problems:
        raise PreflightError(problems, next(kind for kind, listed in found.items() if listed))
    for report in reports:
        logger.info("preflight: the %s split has %d items; %d decoded", report.split, report.items,
                    min(ITEMS_TRIED, report.items))
    return reports


def _checkpoint_problems(cfg: CfgNode) -> List[str]:
    """The checkpoint files the run will load, where they are missing."""
    wanted = {}
    resumes = cfg.TRAIN.AUTO_RESUME and checkpoint.last_checkpoint(cfg.OUTPUT_DIR)
    if cfg.TRAIN.ENABLE and cfg.TRAIN.CHECKPOINT_FILE_PATH and not resumes:
        wanted["TRAIN.CHECKPOINT_FILE_PATH"] = cfg.TRAIN.CHECKPOINT_FILE_PATH
    if cfg.TEST.ENABLE and cfg.TEST.CHECKPOINT_FILE_PATH:
        wanted["TEST.CHECKPOINT_FILE_PATH"] = cfg.TEST.CHECKPOINT_FILE_PATH
    return [f"{key} {path} does not exist; give the path of a checkpoint file (.pyth)"
            for key, path in wanted.items() if "://" not in path and not os.path.isfile(path)]


def _dataset_name(cfg: CfgNode, split: str) -> str:
    return cfg.TRAIN.DATASET if split == "train" else cfg.TEST.DATASET


def _where(cfg: CfgNode, split: str) -> str:
    key = "TRAIN.DATASET" if split == "train" else "TEST.DATASET"
    return f"{split} split ({key} {_dataset_name(cfg, split)!r}, DATA.PATH_TO_DATA_DIR {cfg.DATA.PATH_TO_DATA_DIR!r})"


def check_split(cfg: CfgNode, split: str) -> SplitReport:
    """One split: built, labelled within range, files present, a few items decoded."""
    report = SplitReport(split)
    try:
        dataset = build_dataset(cfg, split)
    except Exception as error:  # whatever the dataset's builder raises, the run would too
        report.problems.append(f"{_where(cfg, split)}: {error}{_build_hint(cfg, split)}")
        return report
    report.items = len(dataset)
    videos = getattr(dataset, "videos", None)
    if isinstance(videos, list):
        if not cfg.MASK.ENABLE:
            report.problems += _label_problems(cfg, split, videos)
        report.problems += _missing_file_problems(cfg, split, [path for path, _ in videos[:FILES_LOOKED_FOR]])
    if not report.problems:
        report.problems += _item_problems(cfg, split, dataset)
    return report


def _build_hint(cfg: CfgNode, split: str) -> str:
    if split != "train" and cfg.TRAIN.ENABLE and cfg.TEST.DATASET.lower() != cfg.TRAIN.DATASET.lower():
        return (f"; TEST.DATASET ({cfg.TEST.DATASET!r}) is not TRAIN.DATASET ({cfg.TRAIN.DATASET!r}): "
                f"set TEST.DATASET {cfg.TRAIN.DATASET} if the {split} split comes from the same dataset")
    if split == "test":
        return "; add the list, or set TEST.ENABLE False to skip testing"
    return ""


def _label_problems(cfg: CfgNode, split: str, videos: List[Any]) -> List[str]:
    num_classes = cfg.MODEL.NUM_CLASSES
    outside = [(path, label) for path, label in videos
               if isinstance(label, int) and not 0 <= label < num_classes]
    if not outside:
        return []
    path, label = outside[0]
    highest = max(label for _, label in outside)
    return [
        f"{_where(cfg, split)}: {len(outside)} of {len(videos)} labels lie outside [0, MODEL.NUM_CLASSES = "
        f"{num_classes}), e.g. {label} for {path}; set MODEL.NUM_CLASSES to the number of classes "
        f"(at least {highest + 1}) or correct the list"
    ]


def _missing_file_problems(cfg: CfgNode, split: str, paths: List[str]) -> List[str]:
    """A problem when none of the first listed local files exists (a wrong folder or
    prefix); a warning when only some are missing (the run skips and counts those)."""
    local = [path for path in paths if "://" not in path]
    missing = [path for path in local if not os.path.exists(path)]
    if not missing:
        return []
    if len(missing) < len(local):
        logger.warning("preflight: %d of the first %d files of the %s split are missing, e.g. %s",
                       len(missing), len(local), split, missing[0])
        return []
    example = missing[0]
    return [f"{_where(cfg, split)}: none of the first {len(local)} listed files exists, e.g. {example} "
            f"(DATA.PATH_PREFIX {cfg.DATA.PATH_PREFIX!r}); {missing_file_advice(example)}"]


def _probe_indices(length: int) -> List[int]:
    return sorted({0, length // 2, length - 1}) if length else []


def _item_problems(cfg: CfgNode, split: str, dataset: Dataset) -> List[str]:
    """Decode a few items as the loader would; a failure is a problem, a replaced video
    (an unreadable file among readable ones) a warning."""
    try:
        if isinstance(dataset, IterableDataset):
            items = [next(iter(dataset))]
        else:
            items = [dataset[index] for index in _probe_indices(len(dataset))[:ITEMS_TRIED]]
    except StopIteration:
        return [f"{_where(cfg, split)}: it yields no items"]
    except Exception as error:
        return [f"{_where(cfg, split)}: its items cannot be read: {type(error).__name__}: {error}"]
    skipped = [path for item in items for path in item.get("meta", {}).get("skipped", [])]
    if skipped:
        logger.warning("preflight: unreadable files in the %s split (the run skips them): %s",
                       split, ", ".join(skipped))
    return []


def describe(reports: List[SplitReport]) -> str:
    """One line of what a passed preflight checked."""
    if not reports:
        return "preflight passed: the run reads no split (TRAIN.ENABLE and TEST.ENABLE are off)"
    splits = ", ".join(f"{report.split} ({report.items} items)" for report in reports)
    return f"preflight passed: {splits}"
