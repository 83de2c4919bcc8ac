"""Where the videos of a dataset are and what they show: the official Kinetics
annotation CSVs matched against a download folder, or a folder-per-class tree."""

import csv
import logging
import os
import random
import re
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Dict, Iterable, List, Optional, Sequence

from slowmask.data import VIDEO_EXTENSIONS

logger = logging.getLogger(__name__)

# Split names in the official CSVs -> ours.
SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "validate": "val",
               "validation": "val", "test": "test", "testing": "test"}
ANNOTATION_COLUMNS = ("youtube_id", "time_start", "time_end", "split")
# A downloader's usual file name: <11-character YouTube id>_<start>_<end>.
_CLIP_NAME = re.compile(r"^(?P<id>.{11})_(?P<start>\d+)_(?P<end>\d+)$")


@dataclass
class VideoEntry:
    """One video of the dataset: its split, class name ("" when unlabelled), the file
    (None when it was not found) and a key naming it in reports."""

    split: str
    label: str
    path: Optional[str]
    key: str


@dataclass
class Annotation:
    """One row of an official Kinetics CSV: label,youtube_id,time_start,time_end,split."""

    label: str
    youtube_id: str
    time_start: int
    time_end: int
    split: str

    @property
    def clip_name(self) -> str:
        return f"{self.youtube_id}_{self.time_start:06d}_{self.time_end:06d}"


def _split(name: str, where: str) -> str:
    if name.strip().lower() not in SPLIT_NAMES:
        raise ValueError(f"{where}: unknown split {name!r}; known: {', '.join(sorted(SPLIT_NAMES))}")
    return SPLIT_NAMES[name.strip().lower()]


def read_kinetics_annotations(csv_path: str) -> List[Annotation]:
    """Rows of an official Kinetics CSV (the test CSV may lack the label column)."""
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ANNOTATION_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(
                f"{csv_path} lacks the column(s) {', '.join(missing)}; an official Kinetics CSV has "
                "label,youtube_id,time_start,time_end,split"
            )
        return [
            Annotation(
                label=(row.get("label") or "").strip(),
                youtube_id=row["youtube_id"].strip(),
                time_start=int(float(row["time_start"])),
                time_end=int(float(row["time_end"])),
                split=_split(row["split"], f"{csv_path}, line {number}"),
            )
            for number, row in enumerate(reader, start=2)
        ]


def find_videos(root: str) -> List[str]:
    """Every video file under `root`, sorted."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"video folder not found: {root}")
    found = []
    for folder, _, names in os.walk(root):
        found += [os.path.join(folder, n) for n in names if n.lower().endswith(VIDEO_EXTENSIONS)]
    return sorted(found)


def index_by_name(paths: Iterable[str]) -> Dict[str, str]:
    """{file stem: path} plus {YouTube id: path} for files named <id>_<start>_<end>."""
    index: Dict[str, str] = {}
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0]
        index.setdefault(stem, path)
        match = _CLIP_NAME.match(stem)
        if match:
            index.setdefault(match.group("id"), path)
    return index


def entries_from_annotations(csv_paths: Sequence[str], video_dir: str) -> List[VideoEntry]:
    """Annotated clips matched to files of `video_dir` by <id>_<start:06d>_<end:06d> or,
    failing that, by the YouTube id alone; unmatched ones get path None."""
    index = index_by_name(find_videos(video_dir))
    entries = []
    for csv_path in csv_paths:
        for row in read_kinetics_annotations(csv_path):
            path = index.get(row.clip_name) or index.get(row.youtube_id)
            entries.append(VideoEntry(row.split, row.label, path, row.clip_name))
    return entries


def entries_from_folders(root: str) -> List[VideoEntry]:
    """root/<split>/<class>/<video> (split: train, val, test), or root/<class>/<video>,
    which is all training data."""
    splits = [name for name in sorted(os.listdir(root)) if name in SPLIT_NAMES and os.path.isdir(os.path.join(root, name))]
    tops = [(SPLIT_NAMES[name], os.path.join(root, name)) for name in splits] or [("train", root)]
    entries = []
    for split, top in tops:
        for label in sorted(n for n in os.listdir(top) if os.path.isdir(os.path.join(top, n))):
            for path in find_videos(os.path.join(top, label)):
                entries.append(VideoEntry(split, label, path, os.path.relpath(path, root)))
    if not entries:
        raise ValueError(f"no videos in {root}: expected {root}/<class>/<video> or {root}/<split>/<class>/<video>")
    return entries


def hold_out(
    entries: Sequence[VideoEntry], val_fraction: float, test_fraction: float, seed: int = 0
) -> List[VideoEntry]:
    """The training entries with a share of each class moved to "val" and "test"
    (stratified: round(n * fraction) of a class's n videos, drawn by a generator seeded
    with `seed` from the videos sorted by key, so a rerun gives the same split). Each
    class keeps at least one training video: the held-out counts are lowered (test
    first) where rounding would take them all.

    Raises:
        ValueError: a fraction outside [0, 1), fractions that leave no training data, or
            entries that already have a val or test split.
    """
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(
            f"--val-fraction {val_fraction} and --test-fraction {test_fraction}: each must be in [0, 1) and their "
            "sum below 1, so that training keeps some videos"
        )
    split_already = sorted({entry.split for entry in entries} - {"train"})
    if split_already and (val_fraction or test_fraction):
        raise ValueError(
            f"the videos already have a {' and a '.join(split_already)} split (split folders): hold-out fractions "
            "split a tree of training videos only; drop --val-fraction / --test-fraction"
        )
    by_class: Dict[str, List[VideoEntry]] = defaultdict(list)
    for entry in entries:
        by_class[entry.label].append(entry)
    generator = random.Random(seed)
    held: Dict[str, str] = {}
    for label in sorted(by_class):
        videos = sorted(by_class[label], key=lambda entry: entry.key)
        generator.shuffle(videos)
        num_val = min(round(len(videos) * val_fraction), len(videos) - 1)
        num_test = min(round(len(videos) * test_fraction), len(videos) - 1 - num_val)
        held.update({entry.key: "val" for entry in videos[:num_val]})
        held.update({entry.key: "test" for entry in videos[num_val : num_val + num_test]})
    return [replace(entry, split=held.get(entry.key, entry.split)) for entry in entries]
