import functools
import logging
import os

import pytest
import torch

from slowmask.data import Kinetics, open_video, read_video_list
from slowmask.data.decoders.video import Video
from slowmask.data.clip_windows import RandomClipSampler
from slowmask.data.datasets.clip_dataset import item_generator
from slowmask.data.transforms import RandomResizedBox, TrainTransform

MEAN, STD = [0.45, 0.45, 0.45], [0.225, 0.225, 0.225]


def tiny_mask(generator: torch.Generator) -> torch.Tensor:
    """A (2, 4, 4) mask, half masked on average."""
    return torch.rand((2, 4, 4), generator=generator) < 0.5


def _videos(demo_data_dir):
    return read_video_list(os.path.join(demo_data_dir, "train.csv"))


def _dataset(videos, **kwargs) -> Kinetics:
    transform = TrainTransform(32, RandomResizedBox((0.3, 1.0), (0.75, 1.33)), MEAN, STD)
    opener = functools.partial(open_video, short_side=48)
    return Kinetics(videos, RandomClipSampler(4, 4), transform, open_video=opener, **kwargs)


def test_from_config_gives_the_documented_item(tiny_cfg):
    dataset = Kinetics.from_config(tiny_cfg, "train")
    item = dataset[3]
    assert item["clip"].shape == (3, 4, 32, 32) and item["clip"].dtype == torch.float32
    assert "mask" not in item
    assert (item["meta"]["path"], item["label"]) == dataset.videos[3]
    assert item["index"] == 3 and item["meta"]["skipped"] == []


def test_num_samples_come_from_one_decode_and_equal_clips_decoded_one_by_one(demo_data_dir):
    opened = []

    def counting_opener(path: str) -> Video:
        opened.append(path)
        return open_video(path, short_side=48)

    dataset = _dataset(_videos(demo_data_dir), num_samples=3, seed=5)
    dataset.open_video = counting_opener
    item = dataset[6]
    assert len(opened) == 1 and len(item["clip"]) == 3
    generator = item_generator(5, 0, 6)
    with open_video(item["meta"]["path"], short_side=48) as video:
        windows = [dataset.sampler(video.num_frames, video.fps, generator) for _ in range(3)]
    assert [w.tolist() for w in windows] == item["meta"]["frame_indices"]
    for window, clip in zip(windows, item["clip"]):
        with open_video(item["meta"]["path"], short_side=48) as video:
            assert torch.equal(clip, dataset.transform(video.get_frames(window), generator))


def test_one_mask_per_clip(demo_data_dir):
    item = _dataset(_videos(demo_data_dir), num_samples=2, mask_generator=tiny_mask)[0]
    assert len(item["mask"]) == 2
    assert all(m.shape == (2, 4, 4) and m.dtype == torch.bool for m in item["mask"])
    single = _dataset(_videos(demo_data_dir), mask_generator=tiny_mask)[0]
    assert single["mask"].shape == (2, 4, 4)


def test_items_depend_on_seed_epoch_and_index_only(demo_data_dir):
    videos = _videos(demo_data_dir)
    dataset = _dataset(videos, seed=1, mask_generator=tiny_mask)
    first = dataset[2]
    again = _dataset(videos, seed=1, mask_generator=tiny_mask)[2]
    assert torch.equal(first["clip"], again["clip"]) and torch.equal(first["mask"], again["mask"])
    dataset.set_epoch(1)
    assert not torch.equal(dataset[2]["clip"], first["clip"])
    assert not torch.equal(_dataset(videos, seed=2)[2]["clip"], first["clip"])


def test_missing_video_is_logged_counted_and_replaced(demo_data_dir, tmp_path, caplog):
    missing = str(tmp_path / "gone.mp4")
    dataset = _dataset([(missing, 0)] + _videos(demo_data_dir)[:3])
    with caplog.at_level(logging.WARNING, logger="slowmask.data.datasets.clip_dataset"):
        item = dataset[0]
    assert any(missing in r.getMessage() and "FileNotFoundError" in r.getMessage() for r in caplog.records)
    assert dataset.skipped == [missing] and item["meta"]["skipped"] == [missing]
    assert item["meta"]["path"] != missing and item["index"] != 0
    assert item["clip"].shape == (3, 4, 32, 32)


def test_every_video_bad_raises_naming_them(tmp_path, corrupt_video):
    missing = str(tmp_path / "gone.mp4")
    dataset = _dataset([(missing, 0), (corrupt_video, 1)], num_retries=3)
    with pytest.raises(RuntimeError, match="gone.mp4.*corrupt.mp4|corrupt.mp4.*gone.mp4"):
        dataset[0]
    assert len(dataset.skipped) == 4


def test_missing_relative_paths_are_named_relative_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dataset = _dataset([("videos/a.mp4", 0), ("videos/b.mp4", 1)], num_retries=1)
    with pytest.raises(RuntimeError) as raised:
        dataset[0]
    assert str(raised.value).endswith(
        f"the files do not exist: the listed paths are relative, so they are read from the working directory "
        f"{tmp_path}; set DATA.PATH_PREFIX to the folder they are relative to"
    )


class OverstatingVideo(Video):
    """A real video that claims to be ten times longer."""

    def __init__(self, video: Video) -> None:
        self.video = video

    fps = property(lambda self: self.video.fps)
    num_frames = property(lambda self: 10 * self.video.num_frames)

    def get_frames(self, indices) -> torch.Tensor:
        return self.video.get_frames(indices)

    def close(self) -> None:
        self.video.close()


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_overstated_length_still_gives_full_clips(short_video, backend):
    dataset = _dataset([(short_video, 0)], num_samples=4)
    dataset.open_video = lambda path: OverstatingVideo(open_video(path, backend))
    item = dataset[0]
    assert max(max(w) for w in item["meta"]["frame_indices"]) > 11
    assert all(clip.shape == (3, 4, 32, 32) and clip.isfinite().all() for clip in item["clip"])


def test_test_split_has_every_view(tiny_cfg):
    dataset = Kinetics.from_config(tiny_cfg, "test")
    assert len(dataset) == 4 * 2 * 3  # videos x temporal views x spatial crops
    meta = dataset[5]["meta"]
    assert (meta["video_index"], meta["temporal_index"], meta["spatial_index"]) == (0, 1, 2)
    assert dataset[6]["meta"]["video_index"] == 1


def test_csv_errors_name_the_file(tiny_cfg, tmp_path):
    tiny_cfg.DATA.PATH_TO_DATA_DIR = str(tmp_path)
    with pytest.raises(FileNotFoundError, match="train.csv"):
        Kinetics.from_config(tiny_cfg, "train")
    (tmp_path / "train.csv").write_text("")
    with pytest.raises(ValueError, match=r"train\.csv is empty"):
        Kinetics.from_config(tiny_cfg, "train")
