"""Preparing a dataset: check (or re-encode) every video, in parallel and resumably,
then write the lists slowmask trains from.

Written into `out_dir`: train.csv / val.csv / test.csv ("absolute_path class_index" per
line; unlabelled videos get -1), classids.json ({class name: index}, names sorted),
missing.txt (annotated videos with no file), unreadable.txt (files that do not decode),
and prepared.tsv, the ledger of videos done: a second run skips every video whose file
is unchanged since (and, when re-encoding, whose output exists).
"""

import json
import logging
import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from .annotations import VideoEntry
from .reencode import probe_video, reencode_video

logger = logging.getLogger(__name__)

LEDGER = "prepared.tsv"
SPLITS = ("train", "val", "test")
# Per source: (status "ok" / "unreadable", size, mtime_ns, output path).
Ledger = Dict[str, Tuple[str, int, int, str]]


@dataclass
class PrepareReport:
    """What a run found and did: `processed` videos were checked or re-encoded now,
    `reused` were done by an earlier run."""

    lists: Dict[str, str] = field(default_factory=dict)
    classes: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    unreadable: List[str] = field(default_factory=list)
    processed: int = 0
    reused: int = 0


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "unlabelled"


def output_path(out_dir: str, entry: VideoEntry, short_side: int) -> str:
    """Where the video used for training is: the source, or its re-encoded copy."""
    if short_side <= 0:
        return os.path.abspath(entry.path)
    stem = os.path.splitext(os.path.basename(entry.path))[0]
    return os.path.abspath(os.path.join(out_dir, "videos", entry.split, _safe(entry.label), stem + ".mp4"))


def _stamp(path: str) -> Tuple[int, int]:
    stat = os.stat(path)
    return stat.st_size, stat.st_mtime_ns


def read_ledger(out_dir: str) -> Ledger:
    path = os.path.join(out_dir, LEDGER)
    ledger: Ledger = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                status, size, mtime, source, output = line.rstrip("\n").split("\t")
                ledger[source] = (status, int(size), int(mtime), output)
    return ledger


def _is_done(ledger: Ledger, source: str, output: str, reencoding: bool) -> bool:
    if source not in ledger:
        return False
    status, size, mtime, done_output = ledger[source]
    fresh = (size, mtime) == _stamp(source) and done_output == output
    return fresh and (status != "ok" or not reencoding or os.path.exists(output))


def process_video(task: Tuple[str, str, int]) -> Tuple[str, str, Optional[str]]:
    """(source, output, short_side) -> (source, status, error): probe, or re-encode when
    short_side > 0. Runs in worker processes."""
    source, output, short_side = task
    try:
        reencode_video(source, output, short_side) if short_side > 0 else probe_video(source)
    except Exception as error:  # any failure to decode makes the video unreadable
        return source, "unreadable", f"{type(error).__name__}: {error}"
    return source, "ok", None


def _run(tasks: List[Tuple[str, str, int]], jobs: int, ledger_path: str, ledger: Ledger) -> None:
    """Process `tasks`, appending each result to the ledger file as it arrives."""
    with open(ledger_path, "a") as ledger_file:
        if jobs > 1:
            executor = ProcessPoolExecutor(max_workers=jobs)
            results = executor.map(process_video, tasks, chunksize=4)
        else:
            executor, results = None, map(process_video, tasks)
        outputs = {source: output for source, output, _ in tasks}
        for done, (source, status, error) in enumerate(results, start=1):
            if error:
                logger.warning("unreadable video %s (%s)", source, error)
            size, mtime = _stamp(source)
            ledger[source] = (status, size, mtime, outputs[source])
            ledger_file.write(f"{status}\t{size}\t{mtime}\t{source}\t{outputs[source]}\n")
            ledger_file.flush()
            if done % 100 == 0:
                logger.info("%d / %d videos done", done, len(tasks))
        if executor is not None:
            executor.shutdown()


def prepare_dataset(entries: Sequence[VideoEntry], out_dir: str, short_side: int = 0, jobs: int = 1) -> PrepareReport:
    """Check every found video (re-encode it to `short_side` when > 0) with `jobs`
    processes, skipping what an earlier run did, and write the lists (module docstring)."""
    os.makedirs(out_dir, exist_ok=True)
    report = PrepareReport(classes=sorted({e.label for e in entries if e.label}))
    report.missing = [f"{e.split} {e.label} {e.key}" for e in entries if e.path is None]
    present = [e for e in entries if e.path is not None]
    ledger = read_ledger(out_dir)
    outputs = {e.path: output_path(out_dir, e, short_side) for e in present}
    tasks = [(s, o, short_side) for s, o in outputs.items() if not _is_done(ledger, s, o, short_side > 0)]
    report.processed, report.reused = len(tasks), len(outputs) - len(tasks)
    logger.info("%d videos to process, %d done earlier, %d missing", len(tasks), report.reused, len(report.missing))
    _run(tasks, jobs, os.path.join(out_dir, LEDGER), ledger)
    report.unreadable = sorted(s for s in outputs if ledger[s][0] != "ok")
    _write_lists(out_dir, present, outputs, ledger, report)
    return report


def _write_lists(out_dir: str, present: Sequence[VideoEntry], outputs: Dict[str, str], ledger: Ledger,
                 report: PrepareReport) -> None:
    index = {name: i for i, name in enumerate(report.classes)}
    for split in SPLITS:
        rows = [f"{outputs[e.path]} {index.get(e.label, -1)}\n" for e in present
                if e.split == split and ledger[e.path][0] == "ok"]
        if rows:
            report.lists[split] = os.path.join(out_dir, f"{split}.csv")
            with open(report.lists[split], "w") as f:
                f.writelines(rows)
    with open(os.path.join(out_dir, "classids.json"), "w") as f:
        json.dump(index, f, indent=1)
    for name, lines in (("missing.txt", report.missing), ("unreadable.txt", report.unreadable)):
        with open(os.path.join(out_dir, name), "w") as f:
            f.writelines(line + "\n" for line in lines)
