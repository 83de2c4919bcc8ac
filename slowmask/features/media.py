"""A list of videos and images as evaluation clips: the central window and crop of a
video; an image repeated over the clip's frames (a still video)."""

from typing import Callable, List, Sequence

import numpy as np
import torch
from PIL import Image

from slowmask.data.decoding import DecodeError, Video

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class MediaClips(torch.utils.data.Dataset):
    """Item i: {"index": i, "path", "clip": float (3, T, S, S)}, or {"index", "path",
    "error"} when the file cannot be read.

    Args:
        paths: videos and images.
        open_video: path -> Video.
        sampler: `sampler(num_frames, fps, generator, clip_index)` -> frame indices (T,).
        transform: uint8 (T, H, W, 3) frames -> (3, T, S, S) normalized clip.
        num_frames: T, the frames an image is repeated to.
    """

    def __init__(self, paths: Sequence[str], open_video: Callable[[str], Video], sampler, transform,
                 num_frames: int) -> None:
        self.paths = list(paths)
        self.open_video = open_video
        self.sampler = sampler
        self.transform = transform
        self.num_frames = num_frames

    def __len__(self) -> int:
        return len(self.paths)

    def frames(self, path: str) -> torch.Tensor:
        """uint8 (T, H, W, 3)."""
        if path.lower().endswith(IMAGE_EXTENSIONS):
            with Image.open(path) as image:
                pixels = torch.from_numpy(np.asarray(image.convert("RGB")).copy())
            return pixels[None].expand(self.num_frames, -1, -1, -1)
        with self.open_video(path) as video:
            return video.get_frames(self.sampler(video.num_frames, video.fps, None, 0))

    def __getitem__(self, index: int) -> dict:
        path = self.paths[index]
        try:
            return {"index": index, "path": path, "clip": self.transform(self.frames(path), None)}
        except (DecodeError, OSError, ValueError) as error:
            return {"index": index, "path": path, "error": f"{type(error).__name__}: {error}"}


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


__all__ = ["IMAGE_EXTENSIONS", "MediaClips", "collate_media"]
