"""Turning downloaded videos into trainable lists: Kinetics annotation CSVs or a
folder-per-class tree -> train/val/test CSVs ("path label"), a class-index file, lists of
missing and unreadable videos, and optionally videos re-encoded to a smaller short side."""

from .annotations import VideoEntry, entries_from_annotations, entries_from_folders, hold_out, read_kinetics_annotations
from .pipeline import PrepareReport, prepare_dataset
from .reencode import probe_video, reencode_video

__all__ = [
    "PrepareReport",
    "VideoEntry",
    "entries_from_annotations",
    "entries_from_folders",
    "hold_out",
    "prepare_dataset",
    "probe_video",
    "read_kinetics_annotations",
    "reencode_video",
]
