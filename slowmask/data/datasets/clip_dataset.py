"""The clip dataset: a list of (path, label) videos, decoded, sampled, cropped and
masked, item by item. `ClipDataset` is the base of every clip dataset of slowmask
("path label" lists (`kinetics`), video folders, frame folders, image folders,
Something-Something v2) and of your own: a subclass says which videos a split has;
decoding (DATA.DECODING_BACKEND), temporal sampling, crops and flips, normalization, masks
(MASK.ENABLE), repeated sampling (AUG.NUM_SAMPLE), test views, seeding and retries of
unreadable videos come from the config through the part builders of data/build.py.
Register it and name its module in DATA.CUSTOM_MODULES; nothing inside slowmask changes:

    from slowmask.data import DATASET_REGISTRY, ClipDataset

    @DATASET_REGISTRY.register()
    class MyDataset(ClipDataset):
        @classmethod
        def list_videos(cls, data_dir, split):
            return [(path, label), ...]

    # config: TRAIN.DATASET MyDataset, DATA.CUSTOM_MODULES ["my_pkg.my_data"]

`VideoDataset` is the same class under its former name.

Every random choice an item makes (window, crop, flip, mask, a replacement video) comes
from a `torch.Generator` seeded from (seed, epoch, index) only (`item_generator`). The
item is then the same whichever worker, rank or process builds it, and a resumed run
sees the same data; the global RNGs are never used.
"""

import functools
import hashlib
import logging
import os
from typing import Callable, List, Optional, Sequence, Tuple

import torch
from fvcore.common.config import CfgNode

from slowmask.masking import MaskGenerator
from slowmask.utils.errors import SlowmaskError

from ..build import build_clip_dataset_parts
from ..registry import check_split
from ..clip_windows import ClipSampler
from ..decoders.timeout import call_with_timeout
from ..decoders.video import DecodeError, Video, open_video as open_with_backend
from ..transforms import ClipTransform
from .video_list import missing_file_advice

logger = logging.getLogger(__name__)

VideoOpener = Callable[[str], Video]


class NoReadableVideoError(SlowmaskError, RuntimeError):
    """An item for which no video could be read, even after its retries."""

    kind = "data"


def item_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed that mixes the three numbers (nearby triples give unrelated seeds)."""
    digest = hashlib.blake2b(f"{seed}/{epoch}/{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def item_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A CPU generator seeded with `item_seed(seed, epoch, index)`."""
    generator = torch.Generator()
    generator.manual_seed(item_seed(seed, epoch, index))
    return generator


def _unreadable_hint(paths: Sequence[str]) -> str:
    """What to check when no video of an item could be read."""
    if any(os.path.exists(path) for path in paths) or "://" in paths[0]:
        return "check that the dataset's files are videos the decoder reads (DATA.DECODING_BACKEND)"
    return f"the files do not exist: {missing_file_advice(paths[0])}"


class ClipDataset(torch.utils.data.Dataset):
    """Clips from a list of (path, label) videos; subclasses say which videos a split has
    (`list_videos`, or their own `from_config`).

    An item decodes its video once and cuts `num_samples` windows from it, each at its
    own start; each window's frames give `crops_per_window` clips, each with its own crop,
    flip, augmentation and mask (PySlowFast's TRAIN_CROP_NUM_TEMPORAL windows x
    TRAIN_CROP_NUM_SPATIAL * AUG.NUM_SAMPLE crops; clips in window order). Item `index` is view
    `index % views_per_video` of video `index // views_per_video`, where a video has
    `sampler.num_views * transform.num_views` views (1 in training, the temporal x
    spatial test views otherwise). An item is a dict:

        clip   float32 (3, T, S, S), normalized; a list of num_clips clips when > 1
        mask   bool (t, h, w), True = masked, one per clip (only with a mask generator)
        label  int
        index  int, the item actually returned (another one when its video was unreadable)
        meta   {"path", "skipped" (paths that failed for this item), "video_index",
                "temporal_index", "spatial_index", "frame_indices" (one list per clip)}

    where num_clips = num_samples * crops_per_window.

    All randomness comes from a generator seeded from (seed, epoch, index): call
    `set_epoch` at each epoch. An unreadable video (missing, empty, truncated, not a
    video, or a decode that overran `decode_timeout`) is logged, recorded in `skipped`
    (per process; `meta["skipped"]` travels with the batch) and replaced by another
    video, at most `num_retries` times; then NoReadableVideoError.

    Args:
        videos: (path, label) pairs.
        sampler: chooses the frame indices of a clip (see clip_windows.py).
        transform: uint8 frames (T, H, W, 3) -> clip (see transforms.py).
        open_video: path -> opened Video (see decoders/video.py), e.g. a functools.partial of
            `open_video` with a backend and decode size.
        mask_generator: generator -> bool mask (t, h, w), or None for no mask.
        num_samples: windows cut from each decoded video.
        crops_per_window: clips cut from each window's frames.
        seed: base seed of the per-item generators.
        num_retries: other videos tried when one cannot be read.
        decode_timeout: seconds an open + decode may take before it is abandoned and
            counted as unreadable (see decoders/timeout.py); 0: no limit, no helper thread.
    """

    def __init__(
        self,
        videos: Sequence[Tuple[str, int]],
        sampler: ClipSampler,
        transform: ClipTransform,
        open_video: VideoOpener = open_with_backend,
        mask_generator: Optional[MaskGenerator] = None,
        num_samples: int = 1,
        crops_per_window: int = 1,
        seed: int = 0,
        num_retries: int = 10,
        decode_timeout: float = 60.0,
    ) -> None:
        if not videos:
            raise ValueError(f"{type(self).__name__} needs at least one video")
        if num_samples < 1 or crops_per_window < 1 or num_retries < 0:
            raise ValueError(
                f"need num_samples >= 1, crops_per_window >= 1 and num_retries >= 0, "
                f"got {num_samples}, {crops_per_window}, {num_retries}"
            )
        if decode_timeout < 0:
            raise ValueError(f"decode_timeout must be >= 0 seconds (0: no limit), got {decode_timeout}")
        self.videos = list(videos)
        self.sampler = sampler
        self.transform = transform
        self.open_video = open_video
        self.mask_generator = mask_generator
        self.num_samples = num_samples
        self.crops_per_window = crops_per_window
        self.seed = seed
        self.num_retries = num_retries
        self.decode_timeout = decode_timeout
        self.epoch = 0
        self.skipped: List[str] = []

    @classmethod
    def list_videos(cls, data_dir: str, split: str) -> Sequence[Tuple[str, int]]:
        """[(video path, integer label)] of `split` ("train", "val" or "test") under
        `data_dir` (DATA.PATH_TO_DATA_DIR); label -1 for unlabelled videos. The hook the
        base `from_config` reads: a subclass gives it, or a `from_config` of its own."""
        raise NotImplementedError(
            f"{cls.__name__} must define the classmethod list_videos(data_dir, split) -> [(path, label), ...] "
            "(or a from_config of its own, as the list and folder datasets do)"
        )

    @classmethod
    def from_config(cls, cfg: CfgNode, split: str) -> "ClipDataset":
        """`list_videos(DATA.PATH_TO_DATA_DIR, split)` with the parts the config builds."""
        check_split(split)
        videos = cls.list_videos(cfg.DATA.PATH_TO_DATA_DIR, split)
        if not videos:
            raise ValueError(f"{cls.__name__}.list_videos({cfg.DATA.PATH_TO_DATA_DIR!r}, {split!r}) found no videos")
        return cls(videos, **build_clip_dataset_parts(cfg, split))

    @property
    def num_clips(self) -> int:
        """Clips per item: windows x crops per window."""
        return self.num_samples * self.crops_per_window

    @property
    def views_per_video(self) -> int:
        return self.sampler.num_views * self.transform.num_views

    def __len__(self) -> int:
        return len(self.videos) * self.views_per_video

    def set_epoch(self, epoch: int) -> None:
        """Reseed: items of another epoch get other windows, crops and masks."""
        self.epoch = epoch

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} outside [0, {len(self)})")
        generator = item_generator(self.seed, self.epoch, index)
        failed: List[str] = []
        reasons: List[str] = []
        current = index
        for _ in range(self.num_retries + 1):
            path = self.videos[current // self.views_per_video][0]
            try:
                frames, frame_indices = self._decode(path, self._views(current)[0], generator)
            except (DecodeError, OSError) as e:
                logger.warning("skipping unreadable video %s (%s: %s)", path, type(e).__name__, e)
                failed.append(path)
                reasons.append(f"{path} ({type(e).__name__})")
                self.skipped.append(path)
                current = self._replacement(current, generator)
                continue
            return self._item(current, frames, frame_indices, generator, failed)
        raise NoReadableVideoError(
            f"item {index}: none of the {len(failed)} videos tried could be read "
            f"(DATA_LOADER.NUM_RETRIES = {self.num_retries}): {', '.join(dict.fromkeys(reasons))}; "
            f"{_unreadable_hint(failed)}"
        )

    def _views(self, index: int) -> Tuple[int, int]:
        """(temporal, spatial) view of an item."""
        view = index % self.views_per_video
        return view // self.transform.num_views, view % self.transform.num_views

    def _decode(
        self, path: str, temporal_index: int, generator: torch.Generator
    ) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """Decode `path` once, within `decode_timeout`: num_samples uint8 (T, H, W, 3)
        clips and their frame indices. The decode draws from a copy of `generator`
        (an abandoned decode may still be running), whose state `generator` takes on
        success: items are the same with and without a deadline."""
        own = torch.Generator()
        own.set_state(generator.get_state())
        read = functools.partial(self._read, path, temporal_index, own)
        frames, frame_indices = call_with_timeout(read, self.decode_timeout, path)
        generator.set_state(own.get_state())
        return frames, frame_indices

    def _read(
        self, path: str, temporal_index: int, generator: torch.Generator
    ) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """Open, sample and decode `path` (see `_decode`); the video is always closed."""
        with self.open_video(path) as video:
            clip_indices = [
                self.sampler(video.num_frames, video.fps, generator, temporal_index) for _ in range(self.num_samples)
            ]
            frames = video.get_frames(torch.cat(clip_indices))
        return list(frames.split([len(i) for i in clip_indices])), clip_indices

    def _replacement(self, index: int, generator: torch.Generator) -> int:
        """The same view of another video, drawn at random."""
        views, num_videos = self.views_per_video, len(self.videos)
        video = index // views
        if num_videos > 1:
            other = int(torch.randint(0, num_videos - 1, (), generator=generator))
            video = other + (other >= video)
        return video * views + index % views

    def _item(
        self,
        index: int,
        frames: List[torch.Tensor],
        frame_indices: List[torch.Tensor],
        generator: torch.Generator,
        failed: List[str],
    ) -> dict:
        temporal_index, spatial_index = self._views(index)
        crops = range(self.crops_per_window)
        clips = [self.transform(window, generator, spatial_index) for window in frames for _ in crops]
        frame_indices = [indices for indices in frame_indices for _ in crops]
        path, label = self.videos[index // self.views_per_video]
        meta = {
            "path": path,
            "skipped": failed,
            "video_index": index // self.views_per_video,
            "temporal_index": temporal_index,
            "spatial_index": spatial_index,
            "frame_indices": [i.tolist() for i in frame_indices],
        }
        single = len(clips) == 1
        item = {"clip": clips[0] if single else clips, "label": label, "index": index, "meta": meta}
        if self.mask_generator is not None:
            masks = [self.mask_generator(generator) for _ in clips]
            item["mask"] = masks[0] if single else masks
        return item



# The name before ClipDataset, kept so that code written against it keeps working.
VideoDataset = ClipDataset
