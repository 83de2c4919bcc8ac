"""Data: decode, sample, augment, mask and batch video clips.

`build_dataset(cfg, split)` and `build_loader(cfg, split)` build from the config; the
parts (decoders, samplers, transforms, datasets) take plain arguments and work alone.
"""

from .augment import ClipErasing, ClipRandAugment, parse_rand_augment
from .build import (
    DATASET_REGISTRY, build_batch_mixer, build_clip_sampler, build_clip_transform, build_dataset, build_loader,
    build_video_opener, set_epoch,
)
from .clip_windows import (
    CenterClipSampler, ClipSampler, OffsetClipSampler, RandomClipSampler, SegmentSampler, UniformClipSampler,
)
from .collate import collate_clips
from .decode_timeout import DecodeTimeout, call_with_timeout
from .decoding import DecodeError, Video, open_video
from .frame_folder import FrameFolder, FrameListVideo, read_frame_list
from .image_folder import ImageAsVideo, ImageFolder, list_image_folder, open_image
from .index_samplers import EpochShuffleSampler
from .mixed import FrameRepeat, MixedBatchSampler, MixedDataset
from .mixup import MixupCutmix
from .pytorchvideo_dataset import PyTorchVideoDataset
from .ssv2 import Ssv2, read_ssv2_labels
from .transforms import EvalTransform, RandomResizedBox, ShortSideJitterBox, TrainTransform
from .video_dataset import Kinetics, NoReadableVideoError, VideoDataset, item_generator
from .video_list import read_video_list
from .video_folder import VideoFolder, list_video_files

__all__ = [
    "DATASET_REGISTRY",
    "CenterClipSampler",
    "ClipErasing",
    "ClipRandAugment",
    "ClipSampler",
    "DecodeError",
    "DecodeTimeout",
    "EpochShuffleSampler",
    "EvalTransform",
    "FrameFolder",
    "FrameListVideo",
    "FrameRepeat",
    "ImageAsVideo",
    "ImageFolder",
    "Kinetics",
    "MixedBatchSampler",
    "MixedDataset",
    "MixupCutmix",
    "NoReadableVideoError",
    "OffsetClipSampler",
    "PyTorchVideoDataset",
    "RandomClipSampler",
    "RandomResizedBox",
    "SegmentSampler",
    "ShortSideJitterBox",
    "Ssv2",
    "TrainTransform",
    "UniformClipSampler",
    "Video",
    "VideoDataset",
    "VideoFolder",
    "build_batch_mixer",
    "build_clip_sampler",
    "build_clip_transform",
    "build_dataset",
    "build_loader",
    "build_video_opener",
    "call_with_timeout",
    "collate_clips",
    "item_generator",
    "list_image_folder",
    "list_video_files",
    "open_image",
    "open_video",
    "parse_rand_augment",
    "read_frame_list",
    "read_ssv2_labels",
    "read_video_list",
    "set_epoch",
]
