"""Launching a job's processes, the checks before it, and SLURM tasks.

A job starts in one of four ways:

- one process (NUM_GPUS <= 1 and NUM_SHARDS 1): the job runs here;
- PySlowFast style: max(1, NUM_GPUS) processes spawned on each of NUM_SHARDS
  machines, this one being SHARD_ID, meeting at `--init_method tcp://host:port`;
- torchrun: the processes exist already (RANK, LOCAL_RANK, WORLD_SIZE are set) and
  meet through the environment (env://); CPU processes (NUM_GPUS 0) are one shard each,
  NUM_SHARDS taken from WORLD_SIZE (`torchrun_cpu_overrides`);
- SLURM through tools/submit.py: every task (`SlurmTask`) calls `run_at(place, ...)`
  with its place.

Every multi-process job checks, right after the rendezvous, that all ranks answer
(a collective self-test, distributed.py), so a broken rank fails the start instead of
hanging the job. The launch arguments are checked before any process starts
(`check_launch`). Until the first training step a stop signal ends each process at once
(StoppedBeforeStart, exit 128 + the signal); a parent that spawned the processes passes
its signals on to them (utils/stop_signals.py). After it, the training loop's
StopOnSignal hook checkpoints first (hooks/preemption.py).

The preflight (`preflight`): everything a run will read, checked before any model is built.

A multi-day run must not fail at its end because its test list is missing. Before the
first step, each split the run will use (train when TRAIN.ENABLE; val for a classifier's
validation during training; test when TEST.ENABLE) is built as the run would build it:
its list exists and parses, its labels lie in [0, MODEL.NUM_CLASSES) for a classifier,
its first listed files exist, a few items decode, and each process gets at least one
batch. The checkpoints it will load (TRAIN.CHECKPOINT_FILE_PATH for a new run,
TEST.CHECKPOINT_FILE_PATH, TEACHER.CHECKPOINT_FILE_PATH of a "teacher" target) must exist,
the devices NUM_GPUS asks for must be visible, the optional packages the config asks for
installed, and OUTPUT_DIR (with checkpoints/ in it) writable. Every problem is collected
and reported at once, each with the key to change; `tools/run_net.py --check` runs the
preflight alone.

Under SLURM one task runs per GPU on every node (no spawning): each task finds its place
(global rank SLURM_PROCID, local rank SLURM_LOCALID, world size SLURM_NTASKS) in
submitit's JobEnvironment and meets the others at the first node of the job's node
list. `SlurmTask` is checkpointable: on its preemption or time-out signal (SIGUSR2)
the training loop first writes a checkpoint, then hands the signal to submitit, which
calls `checkpoint()`: that requeues the same task, and the requeued job resumes from
the checkpoint just written (TRAIN.AUTO_RESUME).
"""

import atexit
import importlib.util
import logging
import os
import signal
import sys
import urllib.parse
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.multiprocessing as mp
from fvcore.common.config import CfgNode
from torch.multiprocessing import ProcessExitedException
from torch.utils.data import Dataset, IterableDataset

from slowmask import geometry
from slowmask.config import ConfigError, load_config
from slowmask.config.checks import choice_problem
from slowmask.data import build_dataset
from slowmask.data.build import augmentation_problems, decoding_problems
from slowmask.data.video_list import missing_file_advice
from slowmask.targets.build import target_name
from slowmask.utils.errors import SlowmaskError, StoppedBeforeStart, StoppedBySignal, problems_text
from slowmask.utils.output_files import unwritable_problem
from slowmask.utils.stop_signals import Forwarder, stopping_at_once

from slowmask import checkpoint
from .distributed import (
    Place,
    join_process_group,
    leave_process_group,
    self_test,
    started_by_torchrun,
    torchrun_place,
)
from .step import NONFINITE_CHOICES, NORM_TYPES, PRECISION_CHOICES

logger = logging.getLogger(__name__)


Job = Callable[[CfgNode], None]


class DeviceError(SlowmaskError, RuntimeError):
    """NUM_GPUS asks for more GPUs than this machine shows."""


def device_problem(cfg: CfgNode) -> Optional[str]:
    """Why this machine cannot give each process the GPU NUM_GPUS promises, or None."""
    wanted = cfg.NUM_GPUS
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if wanted <= visible:
        return None
    if visible == 0:
        return f"NUM_GPUS is {wanted} but no CUDA device is visible; set NUM_GPUS 0 to run on the CPU"
    return (f"NUM_GPUS is {wanted} but this machine shows {visible} CUDA device(s); set NUM_GPUS {visible} "
            "(it counts the GPUs of each machine, NUM_SHARDS the machines)")


def check_devices(cfg: CfgNode) -> None:
    """DeviceError, before any process starts, when NUM_GPUS cannot be served here."""
    problem = device_problem(cfg)
    if problem:
        raise DeviceError(problem)


def processes_per_machine(cfg: CfgNode) -> int:
    return geometry.world_size(cfg.NUM_GPUS, 1)


def world_size(cfg: CfgNode) -> int:
    return geometry.world_size(cfg.NUM_GPUS, cfg.NUM_SHARDS)


def backend(cfg: CfgNode) -> str:
    """DIST_BACKEND on GPUs; gloo on CPUs, where NCCL cannot run."""
    return cfg.DIST_BACKEND if cfg.NUM_GPUS > 0 else "gloo"


def check_world_size(cfg: CfgNode, place: Place, launcher: str) -> None:
    """ConfigError unless the processes a launcher started match the config's job size."""
    if place.world_size != world_size(cfg):
        cpu = (f" (on the CPU each process counts as a shard: set NUM_SHARDS {place.world_size}, or leave it at 1 "
               "under torchrun)") if cfg.NUM_GPUS == 0 else ""
        raise ConfigError(
            f"{launcher} started WORLD_SIZE={place.world_size} processes but the config asks for "
            f"max(1, NUM_GPUS={cfg.NUM_GPUS}) x NUM_SHARDS={cfg.NUM_SHARDS} = {world_size(cfg)}; "
            f"make them agree (batch size and learning-rate scaling depend on them){cpu}"
        )


def torchrun_cpu_overrides(cfg: CfgNode, environ: Mapping[str, str] = os.environ) -> List[str]:
    """["NUM_SHARDS", WORLD_SIZE] when torchrun started CPU processes (NUM_GPUS 0) and
    NUM_SHARDS is left at 1: on the CPU each process is one shard, so the job's size is
    torchrun's. [] otherwise: GPU processes, or a NUM_SHARDS set (check_launch compares)."""
    if not started_by_torchrun(environ) or cfg.NUM_GPUS != 0 or cfg.NUM_SHARDS != 1:
        return []
    processes = torchrun_place(environ).world_size
    return ["NUM_SHARDS", str(processes)] if processes != 1 else []


INIT_METHOD_FORMS = "tcp://HOST:PORT, env:// (with MASTER_ADDR and MASTER_PORT set) or file:///PATH"


def init_method_problem(init_method: str, environ: Mapping[str, str] = os.environ) -> Optional[str]:
    """Why processes cannot meet at `init_method` (--init_method), or None."""
    url = urllib.parse.urlparse(init_method)
    try:
        port = url.port
    except ValueError:  # not a number, or outside 0..65535
        port = None
    if url.scheme == "tcp" and url.hostname and port:
        return None
    if url.scheme == "env":
        missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if not environ.get(name)]
        if not missing:
            return None
        return f"--init_method env:// reads {' and '.join(missing)} from the environment, which are not set"
    if url.scheme == "file" and url.path:
        return None
    return f"--init_method {init_method!r} is not an address the processes can meet at; use {INIT_METHOD_FORMS}"


def check_launch(cfg: CfgNode, init_method: str, environ: Mapping[str, str] = os.environ) -> None:
    """ConfigError, before any process starts, for launch arguments that cannot work:
    a malformed --init_method of a multi-process job, or torchrun's WORLD_SIZE against
    the config's. (NUM_GPUS, NUM_SHARDS and SHARD_ID are checked with the config.)"""
    if started_by_torchrun(environ):
        check_world_size(cfg, torchrun_place(environ), "torchrun")
    elif world_size(cfg) > 1:
        problem = init_method_problem(init_method, environ)
        if problem:
            raise ConfigError(problem)


def launch(cfg: CfgNode, job: Job, init_method: str = "tcp://localhost:9999") -> None:
    """Run `job(cfg)` in every process of the job."""
    check_launch(cfg, init_method)
    check_devices(cfg)
    if started_by_torchrun():
        if cfg.NUM_GPUS == 0:
            logger.info("torchrun started %d CPU processes (NUM_GPUS 0): each is one shard, NUM_SHARDS %d",
                        cfg.NUM_SHARDS, cfg.NUM_SHARDS)
        run_at(torchrun_place(), job, cfg, "env://")
    elif world_size(cfg) == 1:
        with stopping_at_once():
            job(cfg)
    else:
        _spawn(cfg, job, init_method)


def _spawn(cfg: CfgNode, job: Job, init_method: str) -> None:
    """This machine's processes of the job; this one only waits for them, passing its
    stop signals on: they checkpoint, or stop at once before their first step."""
    with Forwarder() as forward:
        processes = mp.start_processes(_spawned, args=(job, cfg, init_method), nprocs=processes_per_machine(cfg),
                                       join=False, start_method="spawn")
        forward.to(processes.pids())
        try:
            while not processes.join():
                pass
        except ProcessExitedException as error:
            # A child that got the signal while it started (importing, before its own
            # handlers) died of it, or of the KeyboardInterrupt of a Ctrl-C.
            if forward.received is None:
                raise
            raise StoppedBeforeStart(forward.received, signal.Signals(forward.received).name) from error


def _spawned(local_rank: int, job: Job, cfg: CfgNode, init_method: str) -> None:
    per_machine = processes_per_machine(cfg)
    place = Place(cfg.SHARD_ID * per_machine + local_rank, local_rank, world_size(cfg))
    try:
        run_at(place, job, cfg, init_method)
    except StoppedBySignal as stop:
        # torch's spawn wrapper relays an Exception to the parent (which finds the stop by
        # its name in the traceback), then exits; the exit ends here, without the
        # interpreter's teardown (seconds with torch loaded), so that the parent ends the
        # run at once. Nothing is left to write but the logs.
        atexit.register(_exit_after_logs, 1)
        raise RuntimeError(f"rank {place.rank} stopped") from stop


def _exit_after_logs(status: int) -> None:
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def run_at(place: Place, job: Job, cfg: CfgNode, init_method: str) -> None:
    """Run `job(cfg)` as the process at `place`: join the process group (within
    DIST_RENDEZVOUS_TIMEOUT_S), check that every rank answers, run, leave. A stop
    signal before the job's first training step ends it at once (StoppedBeforeStart)."""
    with stopping_at_once():
        if cfg.NUM_GPUS > 0 and torch.cuda.is_available():
            torch.cuda.set_device(place.local_rank)
        join_process_group(
            backend(cfg), init_method, place, cfg.DIST_RENDEZVOUS_TIMEOUT_S, cfg.DIST_COLLECTIVE_TIMEOUT_S
        )
        try:
            self_test(cfg.DIST_RENDEZVOUS_TIMEOUT_S, init_method)
            job(cfg)
        finally:
            leave_process_group()


def select_device(cfg: CfgNode) -> torch.device:
    """The GPU of this process when NUM_GPUS > 0 (and one is visible), else the CPU."""
    if cfg.NUM_GPUS == 0:
        return torch.device("cpu")
    check_devices(cfg)
    return torch.device("cuda", torch.cuda.current_device())


# The preflight.

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
    return reports


def training_choice_problems(cfg: CfgNode) -> List[str]:
    """The TRAIN.MIXED_PRECISION_DTYPE, TRAIN.NONFINITE_LOSS and BN.NORM_TYPE values the
    step cannot train with (checked again where the step is built)."""
    problems = [
        choice_problem(cfg, "TRAIN.MIXED_PRECISION_DTYPE", PRECISION_CHOICES),
        choice_problem(cfg, "TRAIN.NONFINITE_LOSS", NONFINITE_CHOICES),
        choice_problem(cfg, "BN.NORM_TYPE", tuple(NORM_TYPES)),
    ]
    return [problem for problem in problems if problem]


# Optional packages a config asks for: (key, the value that asks, the module it needs,
# how to install it, the value that does without). setup.py's extras name them.
OPTIONAL_PACKAGES = (
    ("TENSORBOARD.ENABLE", True, "tensorboard", "pip install -e '.[tensorboard]' (or pip install tensorboard)", False),
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
            + missing_package_problems(cfg))


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
                       for key, path in wanted.items() if "://" not in path and not os.path.isfile(path)]


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
    processes = world_size(cfg)
    batch_sampler = getattr(dataset, "batch_sampler", None)  # it makes its own batches (data/mixed.py)
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


# SLURM tasks (submitit).

# Rendezvous ports are drawn from [PORT_BASE, PORT_BASE + PORT_RANGE) by job id, so two
# jobs sharing a node rarely collide.
PORT_BASE = 20000
PORT_RANGE = 20000

INSTALL_HINT = "submitit is needed to run under SLURM: pip install 'slowmask[slurm]'"


def import_submitit() -> Any:
    """The submitit module, or ImportError saying how to install it."""
    try:
        import submitit
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    return submitit


def rendezvous_port(job_id: str) -> int:
    """A port in [PORT_BASE, PORT_BASE + PORT_RANGE) that every task of the job derives alike."""
    return PORT_BASE + zlib.crc32(job_id.encode()) % PORT_RANGE


def slurm_place(environment: Any, port: int = 0) -> Tuple[Place, str]:
    """(place, init_method) of this task from a submitit JobEnvironment: ranks from
    SLURM's task ids, `tcp://first-node:port` (port 0: derived from the job id)."""
    place = Place(environment.global_rank, environment.local_rank, environment.num_tasks)
    port = port or rendezvous_port(str(environment.job_id))
    return place, f"tcp://{environment.hostnames[0]}:{port}"


class SlurmTask:
    """One SLURM task of a job: `cfg_file` with `opts`, run by every `job` (train, then
    test) at this task's place. Picklable: submitit sends it to the nodes.

    Args:
        cfg_file: the yaml config.
        opts: KEY VALUE overrides (NUM_GPUS and NUM_SHARDS set to the allocation).
        jobs: the functions to run in turn, each `job(cfg)` (train, run_test).
        port: rendezvous port on the first node; 0 derives one from the job id.
    """

    def __init__(self, cfg_file: str, opts: Sequence[str], jobs: Sequence[Callable], port: int = 0) -> None:
        self.cfg_file = cfg_file
        self.opts = list(opts)
        self.jobs = list(jobs)
        self.port = port

    def __call__(self) -> None:
        cfg = load_config(self.cfg_file, self.opts)
        place, init_method = slurm_place(import_submitit().JobEnvironment(), self.port)
        check_world_size(cfg, place, "SLURM")
        logger.info("SLURM task: rank %d of %d (local %d), rendezvous %s",
                    place.rank, place.world_size, place.local_rank, init_method)
        for job in self.jobs:
            if place.world_size == 1:
                job(cfg)
            else:
                run_at(place, job, cfg, init_method)

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Called by submitit on preemption or time-out: requeue this same task; it
        resumes from the newest checkpoint written so far."""
        return import_submitit().helpers.DelayedSubmission(SlurmTask(self.cfg_file, self.opts, self.jobs, self.port))
