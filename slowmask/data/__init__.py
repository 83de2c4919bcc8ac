"""Data: decode, sample, augment, mask and batch video clips.

`build_dataset(cfg, split)` and `build_loader(cfg, split)` build from the config; the
parts (decoders, samplers, transforms, datasets) take plain arguments and work alone.
"""

from .build import build_clip_sampler, build_clip_transform, build_video_opener
from .collate import collate_clips
from .decoding import DecodeError, Video, open_video
from .kinetics import Kinetics
from .loader import EpochShuffleSampler, build_dataset, build_loader, set_epoch
from .registry import DATASET_REGISTRY
from .sampling import CenterClipSampler, ClipSampler, RandomClipSampler, UniformClipSampler
from .seeding import item_generator
from .transforms import EvalTransform, RandomResizedBox, ShortSideJitterBox, TrainTransform
from .video_list import read_video_list

__all__ = [
    "DATASET_REGISTRY",
    "CenterClipSampler",
    "ClipSampler",
    "DecodeError",
    "EpochShuffleSampler",
    "EvalTransform",
    "Kinetics",
    "RandomClipSampler",
    "RandomResizedBox",
    "ShortSideJitterBox",
    "TrainTransform",
    "UniformClipSampler",
    "Video",
    "build_clip_sampler",
    "build_clip_transform",
    "build_dataset",
    "build_loader",
    "build_video_opener",
    "collate_clips",
    "item_generator",
    "open_video",
    "read_video_list",
    "set_epoch",
]
