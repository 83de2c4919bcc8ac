"""Every kind of unreadable file becomes a counted skip, in every dataset that decodes
videos and with both decoders; an item with no readable video at all fails clearly."""

import functools
import logging
import os

import pytest

from slowmask.data import Kinetics, VideoFolder, build_dataset, open_video, read_video_list
from slowmask.data.datasets.clip_dataset import NoReadableVideoError
from slowmask.data.clip_windows import RandomClipSampler
from slowmask.data.synthetic import write_unreadable_files
from slowmask.data.transforms import RandomResizedBox, TrainTransform

MEAN, STD = [0.45] * 3, [0.225] * 3
KINDS = ("zero_byte", "truncated", "text", "missing")


@pytest.fixture(scope="module")
def bad_files(demo_data_dir, tmp_path_factory):
    good = read_video_list(os.path.join(demo_data_dir, "train.csv"))[0][0]
    return write_unreadable_files(str(tmp_path_factory.mktemp("bad")), good)


def _dataset(videos, backend, **kwargs) -> Kinetics:
    transform = TrainTransform(32, RandomResizedBox((0.3, 1.0), (0.75, 1.33)), MEAN, STD)
    opener = functools.partial(open_video, backend=backend, short_side=48)
    return Kinetics(videos, RandomClipSampler(4, 4), transform, open_video=opener, **kwargs)


@pytest.mark.parametrize("backend", ["pyav", "decord"])
@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_of_bad_file_is_a_counted_skip(demo_data_dir, bad_files, kind, backend, caplog):
    good = read_video_list(os.path.join(demo_data_dir, "train.csv"))[:2]
    dataset = _dataset([(bad_files[kind], 0)] + good, backend)
    with caplog.at_level(logging.WARNING, logger="slowmask.data.datasets.clip_dataset"):
        item = dataset[0]
    assert item["meta"]["skipped"] == [bad_files[kind]] and dataset.skipped == [bad_files[kind]]
    assert item["meta"]["path"] in [path for path, _ in good]
    assert item["clip"].shape == (3, 4, 32, 32)
    assert any(bad_files[kind] in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_video_folder_skips_bad_files_too(demo_data_dir, bad_files, backend):
    folder = VideoFolder.list_videos(os.path.dirname(bad_files["text"]), "train")
    assert sorted(path for path, _ in folder) == sorted(bad_files[k] for k in ("zero_byte", "truncated", "text"))
    good = read_video_list(os.path.join(demo_data_dir, "train.csv"))[:1]
    transform = TrainTransform(32, RandomResizedBox((0.3, 1.0), (0.75, 1.33)), MEAN, STD)
    opener = functools.partial(open_video, backend=backend, short_side=48)
    dataset = VideoFolder(list(folder) + good, RandomClipSampler(4, 4), transform, open_video=opener)
    items = [dataset[i] for i in range(len(folder))]
    assert all(item["meta"]["path"] == good[0][0] for item in items)
    assert sorted(set(dataset.skipped)) == sorted(path for path, _ in folder)


def test_an_item_without_any_readable_video_names_every_file_and_the_key(bad_files):
    dataset = _dataset([(bad_files[kind], 0) for kind in KINDS], "pyav", num_retries=7)
    with pytest.raises(NoReadableVideoError) as error:
        dataset[0]
    message = str(error.value)
    assert "none of the 8 videos tried could be read (DATA_LOADER.NUM_RETRIES = 7)" in message
    assert "missing.mp4 (FileNotFoundError)" in message and "text.mp4 (DecodeError)" in message
    assert len(dataset.skipped) == 8


def ptv_dataset(tiny_cfg, rows, folder, backend):
    (folder / "train.csv").write_text("".join(f"{path} 0\n" for path in rows))
    tiny_cfg.DATA.PATH_TO_DATA_DIR = str(folder)
    tiny_cfg.TRAIN.DATASET = "pytorchvideo_kinetics"
    tiny_cfg.DATA.DECODING_BACKEND = backend
    return build_dataset(tiny_cfg, "train")


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_the_pytorchvideo_dataset_counts_the_videos_it_skips(demo_data_dir, bad_files, tiny_cfg, tmp_path, backend):
    good = [path for path, _ in read_video_list(os.path.join(demo_data_dir, "train.csv"))[:2]]
    dataset = ptv_dataset(tiny_cfg, good + [bad_files[kind] for kind in KINDS], tmp_path, backend)
    items = list(dataset)
    assert sorted(item["meta"]["path"] for item in items) == sorted(os.path.basename(path) for path in good)
    # A skip after the share's last item is reported with the next epoch's first item.
    reported = [path for item in items for path in item["meta"]["skipped"]] + dataset.paths.failed
    assert sorted(reported) == sorted(bad_files.values())


def test_the_pytorchvideo_dataset_without_a_readable_video_fails_clearly(bad_files, tiny_cfg, tmp_path):
    tiny_cfg.DATA_LOADER.NUM_RETRIES = 2
    dataset = ptv_dataset(tiny_cfg, [bad_files[kind] for kind in KINDS], tmp_path, "pyav")
    with pytest.raises(NoReadableVideoError, match=r"none of the 3 videos tried in a row could be read \(DATA_LOADER.NUM_RETRIES = 2\)"):
        list(dataset)
    tiny_cfg.DATA_LOADER.NUM_RETRIES = 10
    dataset = ptv_dataset(tiny_cfg, [bad_files[kind] for kind in KINDS], tmp_path, "decord")
    with pytest.raises(NoReadableVideoError, match=r"none of the 4 videos tried of this share of the dataset could be read") as error:
        list(dataset)
    assert all(path in str(error.value) for path in bad_files.values())
