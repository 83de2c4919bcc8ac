"""Real digit scans as images and as moving-digit videos (slowmask/data/digits.py and the
two demo-data tools)."""

import os

import numpy as np
import pytest

from slowmask.data import list_image_folder, open_video, read_video_list
from slowmask.data.digits import (
    DIGIT_SIDE_SHARE, digit_renderers, load_digit_scans, render_moving_digit, scan_to_grey, split_scans,
    write_digit_images,
)
from tool_scripts import load_tool


@pytest.fixture(scope="module")
def digits():
    return load_digit_scans()


def test_split_is_fixed_disjoint_and_stratified(digits):
    _, labels = digits
    splits = split_scans(labels)
    assert {split: len(rows) for split, rows in splits.items()} == {"train": 1199, "val": 299, "test": 299}
    joined = np.concatenate(list(splits.values()))
    assert sorted(joined.tolist()) == list(range(1797))  # every scan once
    for split in ("val", "test"):
        counts = np.bincount(labels[splits[split]], minlength=10)
        assert counts.min() >= 29 and counts.max() <= 31
    again = split_scans(labels)
    assert all(np.array_equal(splits[s], again[s]) for s in splits)
    assert not np.array_equal(split_scans(labels, seed=1)["test"], splits["test"])


def test_images_show_the_scan_in_folders_of_their_digit(tmp_path, digits):
    scans, labels = digits
    few = np.concatenate([np.flatnonzero(labels == d)[:8] for d in range(10)])  # 80 scans, 8 of each digit
    rows = write_digit_images(str(tmp_path), scans[few], labels[few], size=16, labelled_per_class=2)
    assert sum(len(r) for r in rows.values()) == 80
    train = list_image_folder(str(tmp_path / "train"))
    assert {label for _, label in train} == set(range(10)) and len(train) == len(rows["train"])
    path, label = rows["test"][0]
    assert os.path.basename(os.path.dirname(path)) == str(label)
    from PIL import Image
    pixels = np.asarray(Image.open(path))
    assert pixels.shape == (16, 16, 3) and (pixels[..., 0] == pixels[..., 2]).all()
    index = few[int(os.path.basename(path)[:4])]
    expected = scan_to_grey(scans[index], 16) * 255
    np.testing.assert_allclose(pixels[..., 0], expected, atol=0.51)
    # Upsampling keeps the scan's mean brightness.
    assert abs(pixels[..., 0].mean() - scans[index].mean() / 16 * 255) < 0.1 * 255
    listed = read_video_list(str(tmp_path / "few_labels" / "train.csv"))
    assert sorted(label for _, label in listed) == sorted(list(range(10)) * 2)
    assert len(read_video_list(str(tmp_path / "few_labels" / "test.csv"))) == len(rows["test"])


def _digit_track(frames: np.ndarray) -> np.ndarray:
    """(T, 2) top-left (y, x) of the digit's bounding square: the first row and column
    brighter than the canvas."""
    grey = frames.astype(int).sum(-1)
    inside = grey > grey.min(axis=(1, 2), keepdims=True) + 30
    return np.array([[np.flatnonzero(f.any(1))[0], np.flatnonzero(f.any(0))[0]] for f in inside])


def test_moving_digit_bounces_off_the_borders_and_keeps_its_pixels(digits):
    scans, _ = digits
    scan = np.full((8, 8), 16.0)  # a full square, so the track is its corner
    frames = render_moving_digit(scan, (0.0, 3.0), np.random.default_rng(0), 40, 32, 48)
    side = round(DIGIT_SIDE_SHARE * 32)
    track = _digit_track(frames)
    assert np.ptp(track[:, 0]) == 0  # horizontal: the row stays
    assert track[:, 1].min() >= 0 and track[:, 1].max() <= 48 - side
    steps = np.diff(track[:, 1])
    assert np.abs(steps).max() <= 3 and np.mean(np.abs(steps) == 3) > 0.8  # 3 pixels a frame, less at a turn
    assert (steps > 0).any() and (steps < 0).any()  # it turned at a border
    turns = np.flatnonzero(np.diff(np.sign(steps[steps != 0])))
    assert len(turns) >= 2  # travelled 120 pixels over a 35-pixel course: both borders
    real = render_moving_digit(scans[0], (1.0, 1.0), np.random.default_rng(3), 1, 32, 48)[0].astype(float)
    grey = (real - real.min()) / (real.max() - real.min())
    assert np.corrcoef(np.sort(grey[..., 0].ravel())[-side * side:], np.sort(scan_to_grey(scans[0], side).ravel())
                       )[0, 1] > 0.98


def test_moving_digits_are_deterministic_by_seed_and_draw_their_splits_scans(digits):
    scans, labels = digits
    renderers = digit_renderers(scans, labels, "moving_digits")
    name, render = renderers("test")[7]
    assert name == "digit7" and len(renderers("train")) == 10
    first, again = (render(np.random.default_rng(5), 6, 32, 32) for _ in range(2))
    assert first.shape == (6, 32, 32, 3) and np.array_equal(first, again)
    assert not np.array_equal(first, render(np.random.default_rng(6), 6, 32, 32))
    # Only the test split's scans are drawn for test videos: with the others blank, every
    # test video shows a digit and no training video does.
    test_only = np.zeros_like(scans)
    test_only[split_scans(labels)["test"]] = 16.0
    blanked = digit_renderers(test_only, labels, "moving_digits")
    for split, shown in (("test", True), ("train", False)):
        for _, render in blanked(split):
            frame = render(np.random.default_rng(0), 1, 32, 32)[0].astype(int).sum(-1)
            assert (np.ptp(frame) > 0) == shown
    names = [name for name, _ in digit_renderers(scans, labels, "digit_motion")("train")]
    assert names[:3] == ["digit0_horizontal", "digit0_vertical", "digit1_horizontal"] and len(names) == 20
    with pytest.raises(ValueError, match="unknown digit class set 'letters'"):
        digit_renderers(scans, labels, "letters")


@pytest.mark.parametrize("classes, num_classes", [("moving_digits", 10), ("digit_motion", 20)])
def test_tool_writes_moving_digit_videos(tmp_path, classes, num_classes):
    load_tool("make_demo_data").main([str(tmp_path), "--classes", classes, "--videos-per-class", "1",
                                      "--num-frames", "4", "--height", "32", "--width", "32"])
    test = read_video_list(str(tmp_path / "test.csv"))
    assert [label for _, label in test] == list(range(num_classes))
    assert os.path.basename(test[3][0]) == ("digit3_000.mp4" if classes == "moving_digits"
                                            else "digit1_vertical_000.mp4")
    with open_video(test[0][0]) as video:
        assert video.get_frames([0, 3]).shape == (2, 32, 32, 3)


def test_image_tool_writes_the_digits(tmp_path):
    assert load_tool("make_demo_images").main([str(tmp_path), "--source", "digits", "--size", "8",
                                               "--labelled-per-class", "10"]) == 0
    assert len(list_image_folder(str(tmp_path / "test"))) == 299
    assert len(read_video_list(str(tmp_path / "few_labels" / "train.csv"))) == 100
