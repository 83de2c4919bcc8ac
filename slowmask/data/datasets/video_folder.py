"""Every video under a directory, no list file: unlabelled data for pretraining."""

import logging
import os
from typing import List, Sequence, Tuple

from iopath.common.file_io import g_pathmgr

from ..registry import DATASET_REGISTRY
from .clip_dataset import ClipDataset

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg")
# The label of an unlabelled video (a classification loss fails on it, loudly).
NO_LABEL = -1


def list_video_files(root: str, extensions: Sequence[str] = VIDEO_EXTENSIONS) -> List[str]:
    """Paths of the files under `root` (all depths) whose extension is in `extensions`
    (case ignored), sorted.

    Raises:
        FileNotFoundError: `root` is not a directory.
        ValueError: it holds no such file.
    """
    if not g_pathmgr.isdir(root):
        raise FileNotFoundError(f"video folder not found: {root}")
    found, folders = [], [root]
    while folders:
        folder = folders.pop()
        for name in g_pathmgr.ls(folder):
            path = os.path.join(folder, name)
            if g_pathmgr.isdir(path):
                folders.append(path)
            elif name.lower().endswith(tuple(extensions)):
                found.append(path)
    if not found:
        raise ValueError(f"no videos ({', '.join(extensions)}) under {root}")
    return sorted(found)


@DATASET_REGISTRY.register(name="video_folder")
class VideoFolder(ClipDataset):
    """All videos under DATA.PATH_TO_DATA_DIR/{split}/ when that folder exists, else
    under DATA.PATH_TO_DATA_DIR; each with label -1 (no label)."""

    @classmethod
    def list_videos(cls, data_dir: str, split: str) -> Sequence[Tuple[str, int]]:
        split_dir = os.path.join(data_dir, split)
        root = split_dir if g_pathmgr.isdir(split_dir) else data_dir
        videos = [(path, NO_LABEL) for path in list_video_files(root)]
        logger.info("%s: %d videos under %s", split, len(videos), root)
        return videos
