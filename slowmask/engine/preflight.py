"""The preflight: everything a run will read and write, checked before anything is built.

A multi-day run must not fail at its end because its test list is missing. Before the
first step, each split the run will use (train when TRAIN.ENABLE; val for a classifier's
validation during training; test when TEST.ENABLE) is built as the run would build it:
its list exists and parses, its labels lie in [0, MODEL.NUM_CLASSES) for a classifier,
its first listed files exist, a few items decode, and each process gets at least one
batch. The checkpoints it will load (TRAIN.CHECKPOINT_FILE_PATH for a new run,
TEST.CHECKPOINT_FILE_PATH, TEACHER.CHECKPOINT_FILE_PATH of a "teacher" target) must exist,
the devices NUM_GPUS asks for must be visible (devices.py), the choices only components
know (decoding, augmentation, the step's precision and batch norm) must be valid, the
optional packages the config asks for installed, and OUTPUT_DIR (with checkpoints/ in
it) writable; on a GPU, a WARNING when the memory plan (memory_plan.py) exceeds the
device's memory. Every problem is collected and reported at once, each with the key to
change (PreflightError, whose status is the first problem's kind);
`tools/run_net.py --check` runs the preflight alone.
"""

import importlib.util
import logging
import os
from dataclasses import dataclass, field
from typing import Any, List, Sequence

from fvcore.common.config import CfgNode
from torch.utils.data import Dataset, IterableDataset

from slowmask import checkpoint, geometry
from slowmask.checkpoint.convert.formats import HF_CONFIG
from slowmask.config.checks import choice_problem
from slowmask.data import build_dataset
from slowmask.data.build import augmentation_problems, decoding_problems
from slowmask.data.datasets.video_list import missing_file_advice
from slowmask.targets.build import target_name
from slowmask.utils.errors import SlowmaskError, problems_text
from slowmask.utils.output_files import unwritable_problem

from .devices import device_problem
from .memory_plan import memory_warning
from .probe import probe_problems
from .sharding import sharding_problems
from .step import NONFINITE_CHOICES, NORM_TYPES, PRECISION_CHOICES

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
    choices = component_problems(cfg)
    found = {
        "config": ([device] if device else []) + choices,
        "output": output_problems(cfg),
        "checkpoint": _checkpoint_problems(cfg),
    }
    # The splits are built with those choices: each would only repeat a bad one.
    reports = [] if choices else [check_split(cfg, split) for split in splits_in_use(cfg)]
    found["data"] = [problem for report in reports for problem in report.problems]
    problems = [problem for kind_problems in found.values() for problem in kind_problems]
    if problems:
        raise PreflightError(problems, next(kind for kind, listed in found.items() if listed))
    for report in reports:
        logger.info("preflight: the %s split has %d items; %d decoded", report.split, report.items,
                    min(ITEMS_TRIED, report.items))
    memory = memory_warning(cfg)
    if memory:
        logger.warning("preflight: %s", memory)
    return reports


def training_choice_problems(cfg: CfgNode) -> List[str]:
    """The TRAIN.MIXED_PRECISION_DTYPE, TRAIN.NONFINITE_LOSS and BN.NORM_TYPE values the
    step cannot train with (checked again where the step is built), and what
    TRAIN.SHARDING cannot do with the config (sharding.sharding_problems)."""
    problems = [
        choice_problem(cfg, "TRAIN.MIXED_PRECISION_DTYPE", PRECISION_CHOICES),
        choice_problem(cfg, "TRAIN.NONFINITE_LOSS", NONFINITE_CHOICES),
        choice_problem(cfg, "BN.NORM_TYPE", tuple(NORM_TYPES)),
    ]
    return [problem for problem in problems if problem] + sharding_problems(cfg)


# Optional packages a config asks for: (key, the value that asks, the module it needs,
# how to install it, the value that does without). setup.py's extras name them.
OPTIONAL_PACKAGES = (
    ("TENSORBOARD.ENABLE", True, "tensorboard", "pip install -e '.[tensorboard]' (or pip install tensorboard)", False),
    ("WANDB.ENABLE", True, "wandb", "pip install -e '.[wandb]' (or pip install wandb)", False),
    ("DATA.DECODING_BACKEND", "torchcodec", "torchcodec", "pip install -e '.[torchcodec]'", "pyav"),
    ("DATA.DECODING_BACKEND", "decord", "decord", "pip install decord (no wheel exists for some platforms)", "pyav"),
)


def package_installed(module: str) -> bool:
    """Whether `module` can be imported, found without importing it."""
    return importlib.util.find_spec(module) is not None


def missing_package_problems(cfg: CfgNode) -> List[str]:
    """The optional packages the config asks for (OPTIONAL_PACKAGES) that are not
    installed: found before the model and the loader are built, not after."""
    problems = []
    for key, asking, module, install, instead in OPTIONAL_PACKAGES:
        section, name = key.split(".")
        if cfg[section][name] == asking and not package_installed(module):
            problems.append(f"{key} {asking!r} needs the {module} package, which is not installed: {install}; "
                            f"or set {key} {instead!r}")
    return problems


def component_problems(cfg: CfgNode) -> List[str]:
    """The choices only their components know (decoding, augmentation, the step) and the
    packages they need, checked before anything is built; config/ checks the sizes and
    keys that must agree."""
    return (decoding_problems(cfg) + augmentation_problems(cfg) + training_choice_problems(cfg)
            + probe_problems(cfg) + missing_package_problems(cfg))


def output_problems(cfg: CfgNode) -> List[str]:
    """Why the run cannot write its files: OUTPUT_DIR, and OUTPUT_DIR/checkpoints for a
    training run (a read-only one would fail only at the first checkpoint, an epoch in)."""
    folders = {"OUTPUT_DIR": cfg.OUTPUT_DIR}
    if cfg.TRAIN.ENABLE:
        folders["OUTPUT_DIR/checkpoints"] = checkpoint.checkpoint_dir(cfg.OUTPUT_DIR)
    for name, folder in folders.items():
        problem = unwritable_problem(folder, name)
        if problem:  # checkpoints/ under a bad OUTPUT_DIR would only repeat it
            return [problem]
    return []


def check_output_dir(cfg: CfgNode) -> None:
    """PreflightError (status 6) when the run cannot write its files; before its log opens."""
    problems = output_problems(cfg)
    if problems:
        raise PreflightError(problems, "output")


def _checkpoint_problems(cfg: CfgNode) -> List[str]:
    """The checkpoint files the run will load, where they are missing: the one it starts
    from, the one it tests, and the frozen teacher's of MASK.TARGET "teacher"."""
    wanted = {}
    resumes = cfg.TRAIN.AUTO_RESUME and checkpoint.last_checkpoint(cfg.OUTPUT_DIR)
    if cfg.TRAIN.ENABLE and cfg.TRAIN.CHECKPOINT_FILE_PATH and not resumes:
        wanted["TRAIN.CHECKPOINT_FILE_PATH"] = cfg.TRAIN.CHECKPOINT_FILE_PATH
    if cfg.TEST.ENABLE and cfg.TEST.CHECKPOINT_FILE_PATH:
        wanted["TEST.CHECKPOINT_FILE_PATH"] = cfg.TEST.CHECKPOINT_FILE_PATH
    problems = _teacher_problems(cfg)
    if _reads_teacher(cfg) and cfg.TEACHER.CHECKPOINT_FILE_PATH:
        wanted["TEACHER.CHECKPOINT_FILE_PATH"] = cfg.TEACHER.CHECKPOINT_FILE_PATH
    return problems + [f"{key} {path} does not exist; give the path of a checkpoint file (.pyth)"
                       for key, path in wanted.items() if "://" not in path and not _is_checkpoint(path)
                       and not (key in CONVERTS_FOLDERS and os.path.isfile(os.path.join(path, HF_CONFIG)))]


# The keys whose checkpoint initializes a model (load_pretrained), which also takes a
# Hugging Face model folder (checkpoint/convert/), converted on the fly.
CONVERTS_FOLDERS = ("TRAIN.CHECKPOINT_FILE_PATH", "TEACHER.CHECKPOINT_FILE_PATH")


def _is_checkpoint(path: str) -> bool:
    """A checkpoint file, or a sharded run's checkpoint folder."""
    return os.path.isfile(path) or checkpoint.is_sharded_checkpoint(path)


def _reads_teacher(cfg: CfgNode) -> bool:
    """Whether the run builds the frozen teacher: a pretraining run whose target is "teacher"."""
    return cfg.MASK.ENABLE and (cfg.TRAIN.ENABLE or cfg.TEST.ENABLE) and target_name(cfg) == "teacher"


def _teacher_problems(cfg: CfgNode) -> List[str]:
    """The TEACHER keys MASK.TARGET "teacher" needs that are empty or name no file."""
    if not _reads_teacher(cfg):
        return []
    needed = {
        "TEACHER.CFG_FILE": "the yaml of the teacher's architecture",
        "TEACHER.CHECKPOINT_FILE_PATH": "the teacher's checkpoint (.pyth), e.g. the last one of its pretraining run",
    }
    problems = [f"MASK.TARGET 'teacher' needs {key}, which is empty: set it to {what}"
                for key, what in needed.items() if not cfg.TEACHER[key.split(".")[1]]]
    if cfg.TEACHER.CFG_FILE and not os.path.isfile(cfg.TEACHER.CFG_FILE):
        problems.append(f"TEACHER.CFG_FILE {cfg.TEACHER.CFG_FILE} does not exist; give the yaml of the teacher's "
                        "architecture (relative paths are read from the working directory)")
    return problems


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
    report.problems += _batch_problems(cfg, split, dataset)
    videos = getattr(dataset, "videos", None)
    if isinstance(videos, list):
        if not cfg.MASK.ENABLE:
            report.problems += _label_problems(cfg, split, videos)
        report.problems += _missing_file_problems(cfg, split, [path for path, _ in videos[:FILES_LOOKED_FOR]])
    if not report.problems:
        report.problems += _item_problems(cfg, split, dataset)
    return report


def _batch_problems(cfg: CfgNode, split: str, dataset: Dataset) -> List[str]:
    """A problem when a process would get no training batch: training drops the last
    partial batch, so each process needs a whole one (its share of TRAIN.BATCH_SIZE).
    Evaluation keeps partial batches, and a process without a video still takes part."""
    if split != "train":
        return []
    processes = geometry.world_size(cfg.NUM_GPUS, cfg.NUM_SHARDS)
    batch_sampler = getattr(dataset, "batch_sampler", None)  # it makes its own batches (data/datasets/mixed.py)
    if batch_sampler is not None:
        return [] if len(batch_sampler) else [f"{_where(cfg, split)}: its {len(dataset)} items make no batch"]
    per_process = len(dataset) // processes
    batch = cfg.TRAIN.BATCH_SIZE // processes
    if per_process >= batch:
        return []
    fix = (f"set TRAIN.BATCH_SIZE at most {per_process * processes}" if per_process
           else "run with fewer processes") + " or add items"
    return [f"{_where(cfg, split)}: {len(dataset)} items give {per_process} to each of {processes} process(es), "
            f"fewer than one batch of {batch} per process (TRAIN.BATCH_SIZE {cfg.TRAIN.BATCH_SIZE} / {processes}); "
            f"the last partial batch is dropped, so no training step would run: {fix}"]


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
