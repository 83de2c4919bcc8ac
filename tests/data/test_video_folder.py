"""Every video under a directory, unlabelled, no list file."""

import os

import pytest
from counting_video import counting_frames, frame_numbers

from slowmask.data import VideoFolder, build_dataset, list_video_files
from slowmask.data.video_writer import write_video


@pytest.fixture(scope="module")
def video_tree(tmp_path_factory):
    """root/a.mp4, root/nested/deeper/b.MKV, root/notes.txt."""
    root = tmp_path_factory.mktemp("video_tree")
    os.makedirs(root / "nested" / "deeper")
    write_video(str(root / "a.mp4"), counting_frames(24), fps=30)
    write_video(str(root / "nested" / "deeper" / "b.MKV"), counting_frames(24), fps=30)
    (root / "notes.txt").write_text("not a video")
    return str(root)


def test_lists_videos_at_every_depth_and_nothing_else(video_tree):
    assert list_video_files(video_tree) == [
        os.path.join(video_tree, "a.mp4"), os.path.join(video_tree, "nested", "deeper", "b.MKV")
    ]


def test_items_are_unlabelled_clips_of_the_right_frames(video_tree, tiny_cfg):
    tiny_cfg.DATA.PATH_TO_DATA_DIR = video_tree
    tiny_cfg.TRAIN.DATASET = "video_folder"
    tiny_cfg.DATA.MEAN, tiny_cfg.DATA.STD = [0.0] * 3, [1.0] * 3
    tiny_cfg.DATA.TRAIN_JITTER_SCALES_RELATIVE = [1.0, 1.0]
    dataset = build_dataset(tiny_cfg, "train")
    assert isinstance(dataset, VideoFolder) and len(dataset) == 2
    item = dataset[1]
    assert item["label"] == -1 and item["meta"]["path"].endswith("b.MKV")
    assert item["clip"].shape == (3, 4, 32, 32)
    # counting frames: each frame's grey level says its number
    assert frame_numbers((item["clip"] * 255).permute(1, 2, 3, 0)) == item["meta"]["frame_indices"][0]


def test_a_split_folder_is_used_when_present(tmp_path):
    os.makedirs(tmp_path / "train")
    write_video(str(tmp_path / "train" / "x.mp4"), counting_frames(8), fps=30)
    write_video(str(tmp_path / "y.mp4"), counting_frames(8), fps=30)
    assert [os.path.basename(p) for p, _ in VideoFolder.list_videos(str(tmp_path), "train")] == ["x.mp4"]
    assert len(VideoFolder.list_videos(str(tmp_path), "val")) == 2


def test_missing_or_empty_folders_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="video folder not found"):
        list_video_files(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="no videos"):
        list_video_files(str(tmp_path))
