"""Something-Something v2 in PySlowFast's layout (its `ssv2` dataset), under
DATA.PATH_TO_DATA_DIR:

    something-something-v2-labels.json       {"Putting something on something": "93", ...}
    something-something-v2-train.json        [{"id": "78687", "template": "Putting [something] on [something]", ...}]
    something-something-v2-validation.json   (the same, for "val" and "test")
    train.csv, val.csv                        frame lists (see frame_folder.py), keyed by the json "id"

A video's label is its template's index (brackets removed); the frame lists' label
column is not read. Videos of the json that the frame list lacks are left out, as
PySlowFast does. Frames are sampled one per segment (clip_windows.SegmentSampler: random in
training, the middle one otherwise) and read in OpenCV's BGR order, as PySlowFast reads
them, so its recipes' DATA.REVERSE_INPUT_CHANNEL True gives the model RGB clips.
"""

import functools
import json
import os
from typing import Dict, List, Tuple

import torch
from fvcore.common.config import CfgNode
from iopath.common.file_io import g_pathmgr

from ..build import build_clip_dataset_parts
from ..registry import DATASET_REGISTRY, check_split
from ..decoders.video import Indices, Video
from .frame_folder import FrameListVideo, read_frame_list
from .clip_dataset import ClipDataset
from ..clip_windows import SegmentSampler

LABELS_FILE = "something-something-v2-labels.json"
# split -> (label file, frame list); PySlowFast tests on the validation set.
SPLIT_FILES = {
    "train": ("something-something-v2-train.json", "train.csv"),
    "val": ("something-something-v2-validation.json", "val.csv"),
    "test": ("something-something-v2-validation.json", "val.csv"),
}


def _read_json(path: str):
    if not g_pathmgr.exists(path):
        raise FileNotFoundError(f"Something-Something v2 file not found: {path}")
    with g_pathmgr.open(path, "r") as f:
        return json.load(f)


def read_ssv2_labels(data_dir: str, split: str) -> List[Tuple[str, int]]:
    """[(video id, class index)] of `split`, in the order of its label file."""
    classes: Dict[str, str] = _read_json(os.path.join(data_dir, LABELS_FILE))
    videos = []
    for entry in _read_json(os.path.join(data_dir, SPLIT_FILES[split][0])):
        template = entry["template"].replace("[", "").replace("]", "")
        if template not in classes:
            raise ValueError(f"video {entry['id']}: template {template!r} is not in {LABELS_FILE}")
        videos.append((str(entry["id"]), int(classes[template])))
    return videos


class BgrFrameListVideo(FrameListVideo):
    """A FrameListVideo whose frames come in BGR channel order (OpenCV's)."""

    def get_frames(self, indices: Indices) -> torch.Tensor:
        """uint8 (T, H, W, 3), BGR."""
        return super().get_frames(indices).flip(-1)


def open_bgr_frame_video(video_id: str, frames: Dict[str, List[str]], fps: float, short_side: int = 0) -> Video:
    """The opener of Ssv2: video id -> BgrFrameListVideo."""
    return BgrFrameListVideo(frames[video_id], fps, short_side)


@DATASET_REGISTRY.register()
class Ssv2(ClipDataset):
    """Something-Something v2 in PySlowFast's layout (module docstring). Items as
    `ClipDataset`, `meta["path"]` the video id; one temporal view per video (PySlowFast's
    test views of a video all take the same middle frames), TEST.NUM_SPATIAL_CROPS
    spatial ones."""

    @classmethod
    def from_config(cls, cfg: CfgNode, split: str) -> "Ssv2":
        check_split(split)
        data_dir = cfg.DATA.PATH_TO_DATA_DIR
        frame_list = read_frame_list(os.path.join(data_dir, SPLIT_FILES[split][1]), cfg.DATA.PATH_PREFIX)
        videos = [(video, label) for video, label in read_ssv2_labels(data_dir, split) if video in frame_list.frames]
        if not videos:
            raise ValueError(
                f"no video of {SPLIT_FILES[split][0]} is in {SPLIT_FILES[split][1]} (DATA.PATH_TO_DATA_DIR "
                f"{data_dir!r}); the frame list's first column must be the json's video id"
            )
        parts = build_clip_dataset_parts(cfg, split)
        parts["sampler"] = SegmentSampler(cfg.DATA.NUM_FRAMES, random=split == "train")
        parts["open_video"] = functools.partial(
            open_bgr_frame_video, frames=frame_list.frames, fps=cfg.DATA.TARGET_FPS,
            short_side=cfg.DATA.DECODING_SHORT_SIZE,
        )
        return cls(videos, **parts)

