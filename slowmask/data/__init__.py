"""Data: decode, sample, augment, mask and batch video clips.

`build_dataset(cfg, split)` (registry.py) and `build_loader(cfg, split)` (build.py) build
from the config; the parts take plain arguments and work alone: decoders/ (the `Video`
interface and its backends), datasets/ (the registered datasets), and at this level the
loader's parts (clip windows, transforms, augmentations, mixup, collate, index samplers,
loader workers) and the demo data (synthetic.py, digits.py, video_writer.py).
"""

from .augment import ClipErasing, ClipRandAugment, parse_rand_augment
from .build import (
    build_batch_mixer, build_clip_sampler, build_clip_transform, build_loader, build_video_opener, set_epoch,
)
from .clip_windows import (
    CenterClipSampler, ClipSampler, OffsetClipSampler, RandomClipSampler, SegmentSampler, UniformClipSampler,
)
from .collate import collate_clips
from .datasets import (
    IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, ClipDataset, FrameFolder, FrameListVideo, FrameRepeat, ImageAsVideo,
    ImageFolder, Kinetics, MixedBatchSampler, MixedDataset, NoReadableVideoError, PyTorchVideoDataset, Ssv2,
    VideoDataset, VideoFolder, VideoListDataset, WeightedMixSampler, item_generator, list_image_folder,
    list_video_files, open_image, read_frame_list, read_ssv2_labels, read_video_list,
)
from .decoders import DecodeError, DecodeTimeout, Video, call_with_timeout, open_video
from .index_samplers import EpochShuffleSampler
from .mixup import MixupCutmix
from .registry import DATASET_REGISTRY, build_dataset
from .transforms import EvalTransform, RandomResizedBox, ShortSideJitterBox, TrainTransform

__all__ = [
    "DATASET_REGISTRY",
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "CenterClipSampler",
    "ClipDataset",
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
    "VideoListDataset",
    "WeightedMixSampler",
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
