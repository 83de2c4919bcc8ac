"""PySlowFast's Kinetics dataset, which reads any list of "path label" lines: the
registered name `kinetics` (TRAIN.DATASET / TEST.DATASET, case ignored) stays for the
configs; the class says what it reads."""

import os

from fvcore.common.config import CfgNode

from ..build import build_clip_dataset_parts
from ..registry import DATASET_REGISTRY, check_split
from .clip_dataset import ClipDataset
from .video_list import read_video_list


@DATASET_REGISTRY.register(name="Kinetics")
class VideoListDataset(ClipDataset):
    """The videos of a "path label" list per split, DATA.PATH_TO_DATA_DIR/{split}.csv
    (Kinetics's, or any other such list; see read_video_list); items as `ClipDataset`."""

    @classmethod
    def from_config(cls, cfg: CfgNode, split: str) -> "VideoListDataset":
        """The dataset of DATA.PATH_TO_DATA_DIR/{split}.csv, split "train", "val" or "test"."""
        check_split(split)
        list_path = os.path.join(cfg.DATA.PATH_TO_DATA_DIR, f"{split}.csv")
        videos = read_video_list(list_path, cfg.DATA.PATH_PREFIX, cfg.DATA.PATH_LABEL_SEPARATOR)
        return cls(videos, **build_clip_dataset_parts(cfg, split))


# PySlowFast's name, kept so that code written against it keeps working.
Kinetics = VideoListDataset
