"""Clips from pytorchvideo's `LabeledVideoDataset` (its Kinetics list reader, video
order, clip samplers and decoders) with slowmask's transforms and masks.

pytorchvideo's own `transforms` package cannot be imported with current torchvision,
so only `pytorchvideo.data` is used: a clip of the sampler's duration is decoded there,
and here subsampled to `num_frames` evenly spaced frames, cropped, flipped, normalized
and masked by the same callables as the Kinetics dataset. The dataset is iterable (the
video order, worker and distributed sharding are pytorchvideo's).
"""

import logging
import os
from typing import Iterator, Optional

import torch
import torch.distributed as dist
from fvcore.common.config import CfgNode

from slowmask.masking import MaskGenerator, build_mask_generator

from ..build import build_clip_transform, clips_per_video
from ..registry import DATASET_REGISTRY, check_split
from ..decoders.video import resolve_backend
from ..transforms import ClipTransform
from .clip_dataset import NoReadableVideoError, item_generator

logger = logging.getLogger(__name__)

def even_frames(video: torch.Tensor, num_frames: int) -> torch.Tensor:
    """float (3, T', H, W) in [0, 255] (pytorchvideo's clip) -> uint8 (num_frames, H, W, 3):
    `num_frames` frames evenly spaced over the T' decoded ones (repeated when T' is smaller)."""
    _, length, _, _ = video.shape
    indices = torch.linspace(0, length - 1, num_frames).round().long()
    return video[:, indices].permute(1, 2, 3, 0).round().clamp(0, 255).to(torch.uint8)


@DATASET_REGISTRY.register(name="pytorchvideo_kinetics")
class PyTorchVideoDataset(torch.utils.data.IterableDataset):
    """Items (as `Kinetics`: clip (3, T, S, S), mask, label, index, meta) from the
    samples of a pytorchvideo `LabeledVideoDataset`.

    Args:
        videos: a `pytorchvideo.data.LabeledVideoDataset` (e.g. `pytorchvideo.data.Kinetics`)
            built without a transform, decode_audio False.
        num_frames: frames per clip (T), evenly spaced over the decoded clip.
        transform: uint8 frames (T, H, W, 3) -> clip; its spatial view is the sample's aug_index.
        mask_generator: generator -> bool mask (t, h, w), or None.
        views_per_video: clips x augmentations the clip sampler gives per video.
        seed: base seed of the per-item generators (crop, flip, mask).
        num_retries: other videos tried when one cannot be read (pytorchvideo's
            consecutive failures), before NoReadableVideoError.
        decode_timeout: seconds an open or a clip decode may take before it is abandoned
            and counted as unreadable; 0: no limit.

    `videos` gets a path handler that records the videos pytorchvideo skips (see
    pytorchvideo_guard.py): they are logged and listed in the next item's meta["skipped"].
    """

    def __init__(
        self,
        videos: torch.utils.data.IterableDataset,
        num_frames: int,
        transform: ClipTransform,
        mask_generator: Optional[MaskGenerator] = None,
        views_per_video: int = 1,
        seed: int = 0,
        num_retries: int = 10,
        decode_timeout: float = 60.0,
    ) -> None:
        from .pytorchvideo_guard import RecordingPathHandler

        self.paths = RecordingPathHandler(decode_timeout)
        videos.video_path_handler = self.paths
        videos._MAX_CONSECUTIVE_FAILURES = num_retries + 1
        self.num_retries = num_retries
        self.videos = videos
        self.num_frames = num_frames
        self.transform = transform
        self.mask_generator = mask_generator
        self.views_per_video = views_per_video
        self.seed = seed
        self.epoch = 0

    @classmethod
    def from_config(cls, cfg: CfgNode, split: str) -> "PyTorchVideoDataset":
        """pytorchvideo's Kinetics over DATA.PATH_TO_DATA_DIR/{split}.csv: a random clip per
        video in training, TEST.NUM_ENSEMBLE_VIEWS clips x TEST.NUM_SPATIAL_CROPS crops
        per video in testing, one clip in validation."""
        from pytorchvideo.data import Kinetics as LabeledKinetics
        from pytorchvideo.data import make_clip_sampler

        check_split(split)
        if clips_per_video(cfg, split) != dict(num_samples=1, crops_per_window=1):
            raise ValueError(
                "the pytorchvideo dataset cuts one clip per item: set AUG.NUM_SAMPLE 1, DATA.TRAIN_CROP_NUM_TEMPORAL 1 "
                f"and DATA.TRAIN_CROP_NUM_SPATIAL 1; got {cfg.AUG.NUM_SAMPLE}, {cfg.DATA.TRAIN_CROP_NUM_TEMPORAL} "
                f"and {cfg.DATA.TRAIN_CROP_NUM_SPATIAL}"
            )
        duration = cfg.DATA.NUM_FRAMES * cfg.DATA.SAMPLING_RATE / cfg.DATA.TARGET_FPS
        clips = cfg.TEST.NUM_ENSEMBLE_VIEWS if split == "test" else 1
        crops = cfg.TEST.NUM_SPATIAL_CROPS if split == "test" else 1
        if split == "train":
            clip_sampler = make_clip_sampler("random", duration)
        else:
            clip_sampler = make_clip_sampler("constant_clips_per_video", duration, clips, crops)
        if dist.is_available() and dist.is_initialized():
            video_sampler = torch.utils.data.DistributedSampler
        else:
            video_sampler = torch.utils.data.RandomSampler if split == "train" else torch.utils.data.SequentialSampler
        videos = LabeledKinetics(
            data_path=os.path.join(cfg.DATA.PATH_TO_DATA_DIR, f"{split}.csv"),
            clip_sampler=clip_sampler,
            video_sampler=video_sampler,
            video_path_prefix=cfg.DATA.PATH_PREFIX,
            decode_audio=False,
            decoder=resolve_backend(cfg.DATA.DECODING_BACKEND),
        )
        return cls(
            videos,
            num_frames=cfg.DATA.NUM_FRAMES,
            transform=build_clip_transform(cfg, split),
            mask_generator=build_mask_generator(cfg),
            views_per_video=clips * crops,
            seed=cfg.RNG_SEED,
            num_retries=cfg.DATA_LOADER.NUM_RETRIES,
            decode_timeout=cfg.DATA_LOADER.DECODE_TIMEOUT,
        )

    def __len__(self) -> int:
        """Items per epoch in this process: views per video x its share of the videos."""
        return self.videos.num_videos * self.views_per_video

    def set_epoch(self, epoch: int) -> None:
        """Reseed crops, flips and masks; reshuffle a distributed video order."""
        self.epoch = epoch
        if hasattr(self.videos.video_sampler, "set_epoch"):
            self.videos.video_sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[dict]:
        """Items of this process's share of the videos; NoReadableVideoError when
        pytorchvideo gives up after failing `num_retries` + 1 videos in a row, or when the
        share ends without any readable video (pytorchvideo would end it silently)."""
        samples, delivered = iter(self.videos), 0
        while True:
            try:
                sample = next(samples)
            except StopIteration:
                if not delivered and self.paths.failed:
                    raise self._unreadable("of this share of the dataset") from None
                return
            except RuntimeError as error:
                if not self.paths.failed:
                    raise
                raise self._unreadable("in a row") from error
            delivered += 1
            yield self._item(sample)

    def _unreadable(self, where: str) -> NoReadableVideoError:
        failed = self.paths.take_failed()
        return NoReadableVideoError(
            f"none of the {len(failed)} videos tried {where} could be read "
            f"(DATA_LOADER.NUM_RETRIES = {self.num_retries}): {', '.join(dict.fromkeys(failed))}; "
            "check that the dataset's files exist and are videos"
        )

    def _item(self, sample: dict) -> dict:
        temporal_index, spatial_index = int(sample["clip_index"]), int(sample["aug_index"])
        crops = self.transform.num_views
        index = int(sample["video_index"]) * self.views_per_video + temporal_index * crops + spatial_index
        generator = item_generator(self.seed, self.epoch, index)
        frames = even_frames(sample["video"], self.num_frames)
        item = {
            "clip": self.transform(frames, generator, spatial_index),
            "label": int(sample["label"]),
            "index": index,
            "meta": {
                "path": sample["video_name"],
                "skipped": self.paths.take_failed(),
                "video_index": int(sample["video_index"]),
                "temporal_index": temporal_index,
                "spatial_index": spatial_index,
            },
        }
        if self.mask_generator is not None:
            item["mask"] = self.mask_generator(generator)
        return item
