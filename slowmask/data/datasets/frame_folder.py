"""Videos stored as folders of frames (Something-Something-v2, Charades): a frame list
per split, in PySlowFast's format, a header line and then one line per frame:

    original_vido_id video_id frame_id path labels
    vid_a 0 0 vid_a/000001.jpg 3
    vid_a 0 1 vid_a/000002.jpg 3,17

(`labels`: comma-separated class indices of the frame, or "" / empty quotes.) A video is
its frames in file order, read as a `Video` at DATA.TARGET_FPS, so sampling, crops, masks,
test views and retries are exactly those of the clip dataset (clip_dataset.py).
"""

import functools
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, List, Sequence, Set, Tuple, Union

import torch
from fvcore.common.config import CfgNode

from ..build import build_clip_dataset_parts
from ..registry import DATASET_REGISTRY, check_split
from ..decoders.video import Indices, Video, clamp_indices
from .image_folder import open_image
from .clip_dataset import ClipDataset
from .video_list import ListFormatError, read_list_lines

logger = logging.getLogger(__name__)

FRAME_LIST_HEADER = "original_vido_id"
# PySlowFast's frame-list datasets test on the validation list.
FRAME_LIST_FILES = {"train": "train.csv", "val": "val.csv", "test": "val.csv"}
NO_LABEL = -1
Label = Union[int, torch.Tensor]


@dataclass
class FrameList:
    """Frames (paths in file order) and the union of the frame labels, per video id."""

    frames: Dict[str, List[str]]
    labels: Dict[str, Set[int]]


def read_frame_list(list_path: str, prefix: str = "") -> FrameList:
    """Parse a PySlowFast frame list (see the module docstring).

    Raises:
        ListNotFoundError (a FileNotFoundError): `list_path` does not exist.
        ListFormatError (a ValueError): no header, a line without five fields, or a label
            that is not an integer.
    """
    lines = read_list_lines(list_path, "frame list")
    if not lines or not lines[0][1].startswith(FRAME_LIST_HEADER):
        raise ListFormatError(
            f"{list_path}: the first line must be the header 'original_vido_id video_id frame_id path labels'"
        )
    frames: Dict[str, List[str]] = OrderedDict()
    labels: Dict[str, Set[int]] = {}
    for number, line in lines[1:]:
        fields = line.split()
        if len(fields) != 5:
            raise ListFormatError(
                f"{list_path}, line {number}: expected 5 fields "
                f"(original_vido_id video_id frame_id path labels), got {len(fields)}"
            )
        video, path, frame_labels = fields[0], fields[3], fields[4].replace('"', "")
        frames.setdefault(video, []).append(os.path.join(prefix, path) if prefix else path)
        try:
            labels.setdefault(video, set()).update(int(x) for x in frame_labels.split(",") if x)
        except ValueError:
            raise ListFormatError(f"{list_path}, line {number}: labels {fields[4]!r} are not integers") from None
    if not frames:
        raise ListFormatError(f"frame list {list_path} has no frames")
    logger.info("read %d videos (%d frames) from %s", len(frames), sum(map(len, frames.values())), list_path)
    return FrameList(frames, labels)


class FrameListVideo(Video):
    """A video given as its frame image files, at a nominal frame rate `fps`.

    `get_frames` reads each requested frame once (JPEG / PNG, shrunk so its short side
    is `short_side`; 0 keeps the size); indices past the end give the last frame.
    """

    def __init__(self, paths: Sequence[str], fps: float, short_side: int = 0) -> None:
        if not paths:
            raise ValueError("a frame-list video needs at least one frame")
        self.paths = list(paths)
        self._fps = fps
        self.short_side = short_side

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def num_frames(self) -> int:
        return len(self.paths)

    def get_frames(self, indices: Indices) -> torch.Tensor:
        """uint8 (T, H, W, 3), RGB."""
        indices = clamp_indices(indices).clamp(max=len(self.paths) - 1)
        unique, inverse = torch.unique(indices, return_inverse=True)
        frames = torch.cat([open_image(self.paths[i], self.short_side).get_frames([0]) for i in unique.tolist()])
        return frames[inverse]

    def close(self) -> None:
        """Nothing stays open: each frame file is read and closed in `get_frames`."""


def open_frame_video(video_id: str, frames: Dict[str, List[str]], fps: float, short_side: int = 0) -> Video:
    """The opener of a frame-list dataset: video id -> FrameListVideo."""
    return FrameListVideo(frames[video_id], fps, short_side)


def video_labels(frame_list: FrameList, multi_label: bool, num_classes: int) -> List[Tuple[str, Label]]:
    """[(video id, label)]: the video's one class (NO_LABEL when it has none); with
    `multi_label`, a float (num_classes,) multi-hot vector of all its classes."""
    videos = []
    for video, classes in frame_list.labels.items():
        if multi_label:
            if classes and max(classes) >= num_classes:
                raise ValueError(f"video {video}: label {max(classes)} >= MODEL.NUM_CLASSES {num_classes}")
            label: Label = torch.zeros(num_classes).index_fill_(0, torch.tensor(sorted(classes), dtype=torch.long), 1.0)
        elif len(classes) > 1:
            raise ValueError(
                f"video {video} has several labels {sorted(classes)}; set DATA.MULTI_LABEL True for multi-label data"
            )
        else:
            label = next(iter(classes)) if classes else NO_LABEL
        videos.append((video, label))
    return videos


@DATASET_REGISTRY.register(name="frame_folder")
class FrameFolder(ClipDataset):
    """Clips from folders of frames listed in DATA.PATH_TO_DATA_DIR/{train,val}.csv
    (PySlowFast's frame lists; "test" reads val.csv as PySlowFast does). Items as
    `ClipDataset`; `meta["path"]` is the video id, `label` an int (NO_LABEL without one) or,
    with DATA.MULTI_LABEL, a float multi-hot vector of MODEL.NUM_CLASSES."""

    @classmethod
    def from_config(cls, cfg: CfgNode, split: str) -> "FrameFolder":
        check_split(split)
        list_path = os.path.join(cfg.DATA.PATH_TO_DATA_DIR, FRAME_LIST_FILES[split])
        frame_list = read_frame_list(list_path, cfg.DATA.PATH_PREFIX)
        parts = build_clip_dataset_parts(cfg, split)
        parts["open_video"] = functools.partial(
            open_frame_video, frames=frame_list.frames, fps=cfg.DATA.TARGET_FPS, short_side=cfg.DATA.DECODING_SHORT_SIZE
        )
        return cls(video_labels(frame_list, cfg.DATA.MULTI_LABEL, cfg.MODEL.NUM_CLASSES), **parts)
