"""Videos as folders of JPEG frames, listed in PySlowFast's frame-list format."""

import os

import pytest
import torch
from counting_video import COUNTING_SIZE, counting_frames, frame_numbers
from PIL import Image

from slowmask.data import FrameFolder, FrameListVideo, build_dataset, collate_clips, read_frame_list

HEADER = "original_vido_id video_id frame_id path labels\n"


def write_frames(folder, num_frames) -> list:
    """Counting frames (frame k is grey 4k) as JPEGs; their paths relative to the parent."""
    os.makedirs(folder, exist_ok=True)
    names = []
    for k, image in enumerate(counting_frames(num_frames)):
        Image.fromarray(image).save(os.path.join(folder, f"{k:06d}.jpg"), quality=95)
        names.append(os.path.join(os.path.basename(folder), f"{k:06d}.jpg"))
    return names


@pytest.fixture(scope="module")
def frame_data(tmp_path_factory):
    """Two videos of 20 and 12 frames; video 'b' carries labels 2 and 5 on different frames."""
    root = tmp_path_factory.mktemp("frames")
    lines = [HEADER]
    for number, (video, length) in enumerate((("a", 20), ("b", 12))):
        for k, path in enumerate(write_frames(str(root / video), length)):
            labels = "1" if video == "a" else ('"2"' if k < 6 else "5")
            lines.append(f"{video} {number} {k} {path} {labels}\n")
    for split in ("train", "val"):
        (root / f"{split}.csv").write_text("".join(lines))
    return str(root)


def frame_cfg(cfg, root, multi_label=False):
    cfg.DATA.PATH_TO_DATA_DIR, cfg.DATA.PATH_PREFIX = root, root
    cfg.TRAIN.DATASET = cfg.TEST.DATASET = "frame_folder"
    cfg.DATA.MEAN, cfg.DATA.STD = [0.0] * 3, [1.0] * 3
    cfg.DATA.SAMPLING_RATE = 2
    cfg.DATA.MULTI_LABEL = multi_label
    cfg.MODEL.NUM_CLASSES = 6
    return cfg


def test_reads_pyslowfast_frame_lists(frame_data):
    frame_list = read_frame_list(os.path.join(frame_data, "train.csv"), prefix=frame_data)
    assert list(frame_list.frames) == ["a", "b"] and len(frame_list.frames["a"]) == 20
    assert frame_list.frames["b"][3] == os.path.join(frame_data, "b", "000003.jpg")
    assert frame_list.labels == {"a": {1}, "b": {2, 5}}


def test_frame_video_returns_the_requested_frames(frame_data):
    paths = read_frame_list(os.path.join(frame_data, "train.csv"), prefix=frame_data).frames["b"]
    with FrameListVideo(paths, fps=30) as video:
        frames = video.get_frames([3, 0, 3, 40])
    assert frames.shape == (4, *COUNTING_SIZE, 3) and frames.dtype == torch.uint8
    assert frame_numbers(frames) == [3, 0, 3, 11]


def test_clips_hold_the_sampled_frames_and_multi_hot_labels_batch(frame_data, tiny_cfg):
    dataset = build_dataset(frame_cfg(tiny_cfg, frame_data, multi_label=True), "val")
    assert isinstance(dataset, FrameFolder) and len(dataset) == 2
    items = [dataset[0], dataset[1]]
    for item in items:
        numbers = frame_numbers((item["clip"] * 255).permute(1, 2, 3, 0))
        assert numbers == item["meta"]["frame_indices"][0]
    assert items[0]["meta"]["frame_indices"][0] == [6, 8, 10, 12]  # centre window, stride 2
    batch = collate_clips(items)
    assert batch["label"].tolist() == [[0, 1, 0, 0, 0, 0], [0, 0, 1, 0, 0, 1]]


def test_several_labels_without_multi_label_fail_clearly(frame_data, tiny_cfg):
    with pytest.raises(ValueError, match=r"video b has several labels \[2, 5\]; set DATA.MULTI_LABEL True"):
        build_dataset(frame_cfg(tiny_cfg, frame_data), "train")


@pytest.mark.parametrize(
    "text, message",
    [
        ("a 0 0 a/1.jpg 1\n", "first line must be the header"),
        (HEADER + "a 0 0 a/1.jpg\n", "line 2: expected 5 fields"),
        (HEADER + "a 0 0 a/1.jpg x\n", "labels 'x' are not integers"),
    ],
)
def test_malformed_frame_lists_fail_with_the_line(tmp_path, text, message):
    (tmp_path / "train.csv").write_text(text)
    with pytest.raises(ValueError, match=message):
        read_frame_list(str(tmp_path / "train.csv"))
