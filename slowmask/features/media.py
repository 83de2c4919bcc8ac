"""Videos and images as evaluation clips: which inputs a list file or a folder names, and
each as a clip (the central window and crop of a video; an image repeated over the clip's
frames, a still video), or as several views (temporal clips x spatial crops) for
multi-view testing."""

import logging
import os
from typing import Callable, List, Sequence

import numpy as np
import torch
from iopath.common.file_io import g_pathmgr
from PIL import Image

from slowmask.data import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, list_video_files, read_video_list
from slowmask.data.decoders.video import DecodeError, Video

logger = logging.getLogger(__name__)

# What an input folder's files must end with (case ignored) to be encoded.
MEDIA_EXTENSIONS = VIDEO_EXTENSIONS + IMAGE_EXTENSIONS


def media_inputs(source: str, prefix: str = "", separator: str = " ") -> List[str]:
    """The inputs `source` names: the videos and images under a folder (all depths, by
    MEDIA_EXTENSIONS, sorted), or the paths of a list file (`listed_inputs`).

    Raises:
        ListNotFoundError (a FileNotFoundError): `source` does not exist.
        ValueError: a folder without videos or images; a malformed or empty list.
    """
    if not g_pathmgr.isdir(source):
        return listed_inputs(source, prefix, separator)
    try:
        found = list_video_files(source, MEDIA_EXTENSIONS)
    except ValueError:
        raise ValueError(f"no videos or images ({' '.join(MEDIA_EXTENSIONS)}) under the folder {source}") from None
    logger.info("%d videos and images under %s", len(found), source)
    return found


def listed_inputs(list_path: str, prefix: str = "", separator: str = " ") -> List[str]:
    """The paths of a "path [label]" list (`read_video_list`'s format), relative ones read
    from the list's folder, as a user expects of a list file. With `prefix` (DATA.PATH_PREFIX)
    every path is joined to it instead, as training reads it. A relative path that exists
    only from the working directory is taken from there, with a warning: lists written
    with paths relative to where they were made (`make_demo_data.py demo_data`) still work.
    """
    paths = [path for path, _ in read_video_list(list_path, prefix, separator)]
    if prefix:
        return paths
    folder = os.path.dirname(list_path)
    resolved, relative, from_working_dir = [], 0, []
    for path in paths:
        beside_list = os.path.join(folder, path)
        if os.path.isabs(path) or "://" in path:
            resolved.append(path)
            continue
        relative += 1
        if g_pathmgr.exists(beside_list) or not g_pathmgr.exists(path):
            resolved.append(beside_list)
        else:
            resolved.append(path)
            from_working_dir.append(path)
    if from_working_dir:
        logger.warning(
            "%d of the %d relative paths of %s are not under its folder %s but under the working directory %s, and "
            "were taken from there (first: %s); write them relative to the list's folder",
            len(from_working_dir), relative, list_path, folder or ".", os.getcwd(), from_working_dir[0],
        )
    return resolved


class MediaClips(torch.utils.data.Dataset):
    """Item i: {"index": input index, "view": view index, "path", "clip": float (3, T, S, S)},
    or {"index", "view", "path", "error"} when the file cannot be read.

    Each input gives `num_clips` x `num_crops` items, input-major: item i is input
    i // V, view i % V (V = num_clips * num_crops), view v being temporal clip v // num_crops
    (the sampler's `clip_index`) at spatial crop v % num_crops (the transform's
    `spatial_index`). With one view each, item i is input i.

    Args:
        paths: videos and images.
        open_video: path -> Video.
        sampler: `sampler(num_frames, fps, generator, clip_index)` -> frame indices (T,).
        transform: `transform(frames, generator, spatial_index)`: uint8 (T, H, W, 3) frames ->
            (3, T, S, S) normalized clip.
        num_frames: T, the frames an image is repeated to.
        num_clips, num_crops: temporal clips and spatial crops per input (TEST.NUM_ENSEMBLE_VIEWS
            and TEST.NUM_SPATIAL_CROPS in PySlowFast's test); the sampler and the transform
            must be built for as many.
    """

    def __init__(self, paths: Sequence[str], open_video: Callable[[str], Video], sampler, transform,
                 num_frames: int, num_clips: int = 1, num_crops: int = 1) -> None:
        if num_clips < 1 or num_crops < 1:
            raise ValueError(f"an input needs at least one clip and one crop, got {num_clips} x {num_crops}")
        self.paths = list(paths)
        self.open_video = open_video
        self.sampler = sampler
        self.transform = transform
        self.num_frames = num_frames
        self.num_clips = num_clips
        self.num_crops = num_crops

    @property
    def views_per_input(self) -> int:
        return self.num_clips * self.num_crops

    def __len__(self) -> int:
        return len(self.paths) * self.views_per_input

    def frames(self, path: str, clip_index: int = 0) -> torch.Tensor:
        """uint8 (T, H, W, 3) of temporal clip `clip_index`."""
        if path.lower().endswith(IMAGE_EXTENSIONS):
            with Image.open(path) as image:
                pixels = torch.from_numpy(np.asarray(image.convert("RGB")).copy())
            return pixels[None].expand(self.num_frames, -1, -1, -1)
        with self.open_video(path) as video:
            return video.get_frames(self.sampler(video.num_frames, video.fps, None, clip_index))

    def __getitem__(self, index: int) -> dict:
        position, view = divmod(index, self.views_per_input)
        path = self.paths[position]
        item = {"index": position, "view": view, "path": path}
        try:
            frames = self.frames(path, view // self.num_crops)
            return {**item, "clip": self.transform(frames, None, view % self.num_crops)}
        except (DecodeError, OSError, ValueError) as error:
            return {**item, "error": f"{type(error).__name__}: {error}"}


def collate_media(items: List[dict]) -> dict:
    """{"clip": (B, 3, T, S, S) of the readable items, "index", "path": theirs, "failed":
    [(path, error)] of the others}."""
    good = [item for item in items if "clip" in item]
    return {
        "clip": torch.stack([item["clip"] for item in good]) if good else None,
        "index": [item["index"] for item in good],
        "path": [item["path"] for item in good],
        "failed": [(item["path"], item["error"]) for item in items if "error" in item],
    }


__all__ = ["MEDIA_EXTENSIONS", "MediaClips", "collate_media", "listed_inputs", "media_inputs"]
