"""Images as one-frame videos: an ImageNet-style folder (one sub-folder of JPEG / PNG
files per class) or a "path label" list of images.

An image is opened as a `Video` with one frame, so the image datasets are the video
dataset with another opener and list: the same sampling, transforms (a (3, 1, S, S)
clip), masks, retries of unreadable files (a corrupt JPEG is logged, recorded in
`skipped` and replaced) and test views.
"""

import functools
import logging
import os
from typing import List, Sequence, Tuple

import torch
from fvcore.common.config import CfgNode
from iopath.common.file_io import g_pathmgr
from PIL import Image

from ..build import build_clip_dataset_parts
from ..registry import DATASET_REGISTRY, check_split
from ..decoders.video import DecodeError, Indices, Video, clamp_indices, resized_shape
from .clip_dataset import ClipDataset
from ..clip_windows import CenterClipSampler
from .video_list import read_video_list

logger = logging.getLogger(__name__)

# The files read as images (case ignored), by class folders here and by the feature
# extractor's input folders (features/media.py): every format PIL opens that cameras and
# datasets use.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
# The nominal frame rate of a one-frame video (any positive value samples frame 0).
IMAGE_FPS = 1.0


class ImageAsVideo(Video):
    """A still image as a video of one frame: `get_frames` repeats it per index.

    Args:
        path: image file (any iopath path).
        short_side: the image is shrunk (bilinear) so its short side is this (0: native).
    Raises:
        FileNotFoundError: `path` does not exist.
        DecodeError: the file is not a readable image (corrupt or truncated).
    """

    def __init__(self, path: str, short_side: int = 0) -> None:
        if not g_pathmgr.exists(path):
            raise FileNotFoundError(f"image not found: {path}")
        try:
            with g_pathmgr.open(path, "rb") as f, Image.open(f) as image:
                image = image.convert("RGB")
                height, width = resized_shape(image.height, image.width, short_side)
                if (height, width) != (image.height, image.width):
                    image = image.resize((width, height), Image.BILINEAR)
                pixels = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
        except (OSError, SyntaxError, ValueError) as e:
            raise DecodeError(f"cannot read image {path}: {e}") from e
        self._frame = pixels.view(1, height, width, 3)

    @property
    def fps(self) -> float:
        return IMAGE_FPS

    @property
    def num_frames(self) -> int:
        return 1

    def get_frames(self, indices: Indices) -> torch.Tensor:
        """uint8 (T, H, W, 3): the image once per index."""
        return self._frame.expand(len(clamp_indices(indices)), -1, -1, -1)

    def close(self) -> None:
        self._frame = self._frame[:0]


def open_image(path: str, short_side: int = 0) -> Video:
    """`ImageAsVideo(path, short_side)`, the image datasets' opener."""
    return ImageAsVideo(path, short_side)


def list_image_folder(root: str) -> List[Tuple[str, int]]:
    """[(path, label)] of the images (IMAGE_EXTENSIONS) in the class folders of `root`; labels
    are the positions of the folder names in sorted order.

    Raises:
        FileNotFoundError: `root` does not exist.
        ValueError: it holds no class folder with an image.
    """
    if not g_pathmgr.isdir(root):
        raise FileNotFoundError(f"image folder not found: {root}")
    classes = sorted(name for name in g_pathmgr.ls(root) if g_pathmgr.isdir(os.path.join(root, name)))
    images = []
    for label, name in enumerate(classes):
        folder = os.path.join(root, name)
        files = sorted(f for f in g_pathmgr.ls(folder) if f.lower().endswith(IMAGE_EXTENSIONS))
        images.extend((os.path.join(folder, f), label) for f in files)
    if not images:
        raise ValueError(
            f"no images ({', '.join(IMAGE_EXTENSIONS)}) in class folders under {root}; expected "
            f"{root}/<class>/<image>"
        )
    logger.info("found %d images of %d classes in %s", len(images), len(classes), root)
    return images


def image_list(data_dir: str, split: str, prefix: str = "", separator: str = " ") -> Sequence[Tuple[str, int]]:
    """The images of `split`: the list file {data_dir}/{split}.csv when there is one,
    otherwise the class folders of {data_dir}/{split}/."""
    list_path = os.path.join(data_dir, f"{split}.csv")
    if g_pathmgr.exists(list_path):
        return read_video_list(list_path, prefix, separator)
    return list_image_folder(os.path.join(data_dir, split))


@DATASET_REGISTRY.register(name="imagenet")
@DATASET_REGISTRY.register(name="imagefolder")
class ImageFolder(ClipDataset):
    """Images as (3, 1, S, S) clips; items, masks, retries and views as `ClipDataset`."""

    @classmethod
    def from_config(cls, cfg: CfgNode, split: str) -> "ImageFolder":
        """The images of DATA.PATH_TO_DATA_DIR/{split}.csv or DATA.PATH_TO_DATA_DIR/{split}/;
        DATA.NUM_FRAMES must be 1."""
        check_split(split)
        if cfg.DATA.NUM_FRAMES != 1:
            raise ValueError(
                f"an image dataset gives one-frame clips: set DATA.NUM_FRAMES 1, got {cfg.DATA.NUM_FRAMES}"
            )
        parts = build_clip_dataset_parts(cfg, split)
        # A one-frame video has one clip: frame 0, whatever the split.
        parts["sampler"] = CenterClipSampler(num_frames=1, sampling_rate=1, target_fps=IMAGE_FPS)
        parts["open_video"] = functools.partial(open_image, short_side=cfg.DATA.DECODING_SHORT_SIZE)
        images = image_list(cfg.DATA.PATH_TO_DATA_DIR, split, cfg.DATA.PATH_PREFIX, cfg.DATA.PATH_LABEL_SEPARATOR)
        return cls(images, **parts)
