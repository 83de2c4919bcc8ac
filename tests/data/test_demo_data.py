import os

import numpy as np
import pytest

from slowmask.data import open_video, read_video_list
from slowmask.data.synthetic import CLASS_SETS, render_moving_shape, write_demo_dataset
from tool_scripts import load_tool


@pytest.mark.parametrize("classes", ["shape_motion", "motion_axis"])
def test_tool_writes_decodable_videos_and_csvs(tmp_path, classes):
    load_tool("make_demo_data").main([str(tmp_path), "--videos-per-class", "2", "--classes", classes])
    for split, per_class in (("train", 2), ("val", 1), ("test", 1)):
        videos = read_video_list(str(tmp_path / f"{split}.csv"))
        assert sorted(label for _, label in videos) == sorted(list(range(len(CLASS_SETS[classes]))) * per_class)
    motion = CLASS_SETS[classes][videos[0][1]][1]
    assert os.path.basename(videos[0][0]).split("_")[-2] == motion
    with open_video(videos[0][0]) as video:
        assert (video.num_frames, video.fps) == (48, 30.0)
        assert video.get_frames([0, 47]).shape == (2, 64, 80, 3)


def _centroids(frames: np.ndarray) -> np.ndarray:
    """(T, 2) centre (y, x) of the bright shape in each frame (background is darker)."""
    inside = frames.astype(int).sum(axis=-1) > 345
    ys, xs = np.mgrid[: frames.shape[1], : frames.shape[2]]
    return np.stack([(ys * inside).sum((1, 2)), (xs * inside).sum((1, 2))], 1) / inside.sum((1, 2))[:, None]


def test_shapes_move_along_their_axis():
    rng = np.random.default_rng(0)
    for shape in ("circle", "square"):
        horizontal = _centroids(render_moving_shape(shape, "horizontal", rng))
        vertical = _centroids(render_moving_shape(shape, "vertical", rng))
        assert np.ptp(horizontal[:, 0]) < 0.5 < 5 < np.ptp(horizontal[:, 1])
        assert np.ptp(vertical[:, 1]) < 0.5 < 5 < np.ptp(vertical[:, 0])


@pytest.mark.parametrize("degrees", [0, 45, 90, 135])
def test_motion_axis_shapes_move_back_and_forth_along_their_line(degrees):
    rng = np.random.default_rng(degrees)
    for _ in range(3):  # circle or square, drawn per video
        centres = _centroids(render_moving_shape("any", f"axis{degrees:03d}", rng))  # (T, 2) y, x
        along = np.array([np.sin(np.deg2rad(degrees)), np.cos(np.deg2rad(degrees))])
        across = np.array([along[1], -along[0]])
        # The centres lie on one line at the angle (up to the pixel grid's rounding), travelled
        # back and forth over more than 10 pixels.
        assert np.ptp(centres @ across) < 1.5
        assert np.ptp(centres @ along) > 10
        turns = np.diff(np.sign(np.diff(centres @ along)))
        assert np.count_nonzero(turns) >= 1


def test_motion_axis_set_names_files_by_motion(tmp_path):
    splits = write_demo_dataset(str(tmp_path), videos_per_class=6, num_frames=4, height=32, width=40,
                                classes="motion_axis")
    names = sorted(os.path.basename(path) for path, _ in splits["train"])
    assert names == sorted(f"axis{d:03d}_{n:03d}.mp4" for d in (0, 45, 90, 135) for n in range(6))
    assert [label for _, label in splits["train"]] == [label for label in range(4) for _ in range(6)]
    with pytest.raises(ValueError, match="unknown class set 'colours': choose one of"):
        write_demo_dataset(str(tmp_path / "no"), classes="colours")


def test_any_shape_is_a_circle_or_a_square():
    areas = []
    for seed in range(12):
        frame = render_moving_shape("any", "axis090", np.random.default_rng(seed), 1, 64, 64)[0].astype(int)
        inside = frame.sum(-1) > 345
        ys, xs = np.nonzero(inside)
        box = (np.ptp(ys) + 1) * (np.ptp(xs) + 1)
        areas.append(inside.sum() / box)  # square 1, circle pi / 4
    assert {round(a, 1) for a in areas} == {0.8, 1.0}


def test_unlabelled_videos_lie_beside_the_labelled_ones_in_no_list(tmp_path):
    splits = write_demo_dataset(str(tmp_path), videos_per_class=1, num_frames=8, height=16, width=16,
                                unlabelled_per_class=2, val_per_class=1, test_per_class=3)
    counts = {split: len(rows) for split, rows in splits.items()}
    assert counts == {"train": 4, "val": 4, "test": 12, "unlabelled": 8}
    listed = {path for path, _ in read_video_list(str(tmp_path / "train.csv"))}
    folder = {str(path) for path in (tmp_path / "videos" / "train").iterdir()}
    assert listed < folder and folder - listed == {path for path, _ in splits["unlabelled"]}
    assert {label for _, label in splits["unlabelled"]} == {-1}
