"""A base class for your own video dataset: list the videos, get everything else.

A subclass says which videos a split has; decoding (DATA.DECODING_BACKEND), temporal
sampling, crops and flips, normalization, masks (MASK.ENABLE), repeated sampling
(AUG.NUM_SAMPLE), test views, seeding and retries of unreadable videos come from the
config through the same builders as Kinetics. Register it and name its module in
DATA.CUSTOM_MODULES; nothing inside slowmask changes:

    from slowmask.data import DATASET_REGISTRY, VideoDataset

    @DATASET_REGISTRY.register()
    class MyDataset(VideoDataset):
        @classmethod
        def list_videos(cls, data_dir, split):
            return [(path, label), ...]

    # config: TRAIN.DATASET MyDataset, DATA.CUSTOM_MODULES ["my_pkg.my_data"]
"""

from typing import Sequence, Tuple

from fvcore.common.config import CfgNode

from .build import build_clip_dataset_parts, check_split
from .kinetics import Kinetics


class VideoDataset(Kinetics):
    """Items, views, seeding and retries as `Kinetics`; subclasses define `list_videos`."""

    @classmethod
    def list_videos(cls, data_dir: str, split: str) -> Sequence[Tuple[str, int]]:
        """[(video path, integer label)] of `split` ("train", "val" or "test") under
        `data_dir` (DATA.PATH_TO_DATA_DIR); label -1 for unlabelled videos."""
        raise NotImplementedError(
            f"{cls.__name__} must define the classmethod list_videos(data_dir, split) -> [(path, label), ...]"
        )

    @classmethod
    def from_config(cls, cfg: CfgNode, split: str) -> "VideoDataset":
        """`list_videos(DATA.PATH_TO_DATA_DIR, split)` with the parts the config builds."""
        check_split(split)
        videos = cls.list_videos(cfg.DATA.PATH_TO_DATA_DIR, split)
        if not videos:
            raise ValueError(f"{cls.__name__}.list_videos({cfg.DATA.PATH_TO_DATA_DIR!r}, {split!r}) found no videos")
        return cls(videos, **build_clip_dataset_parts(cfg, split))
