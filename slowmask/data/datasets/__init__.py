"""The datasets, each registered in DATASET_REGISTRY (data/registry.py) under the name a
config gives: `ClipDataset` (clip_dataset.py), the base that decodes, samples, crops and
masks any list of videos, and its subclasses that say which videos a split has ("path
label" lists, video, frame and image folders, Something-Something v2); `mixed` (OmniMAE's
batches, each from one dataset, or batches mixing every dataset by weight) and pytorchvideo's Kinetics reader. video_list.py reads
the "path label" list files."""

from .clip_dataset import ClipDataset, NoReadableVideoError, VideoDataset, item_generator
from .frame_folder import FrameFolder, FrameListVideo, read_frame_list
from .image_folder import IMAGE_EXTENSIONS, ImageAsVideo, ImageFolder, list_image_folder, open_image
from .kinetics import Kinetics, VideoListDataset
from .mixed import FrameRepeat, MixedBatchSampler, MixedDataset, WeightedMixSampler
from .pytorchvideo_dataset import PyTorchVideoDataset
from .ssv2 import Ssv2, read_ssv2_labels
from .video_folder import VIDEO_EXTENSIONS, VideoFolder, list_video_files
from .video_list import read_video_list

__all__ = [
    "ClipDataset",
    "FrameFolder",
    "FrameListVideo",
    "FrameRepeat",
    "IMAGE_EXTENSIONS",
    "ImageAsVideo",
    "ImageFolder",
    "Kinetics",
    "MixedBatchSampler",
    "MixedDataset",
    "NoReadableVideoError",
    "PyTorchVideoDataset",
    "Ssv2",
    "VIDEO_EXTENSIONS",
    "VideoDataset",
    "VideoFolder",
    "VideoListDataset",
    "WeightedMixSampler",
    "item_generator",
    "list_image_folder",
    "list_video_files",
    "open_image",
    "read_frame_list",
    "read_ssv2_labels",
    "read_video_list",
]
