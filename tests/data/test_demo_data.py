import numpy as np

from slowmask.data import open_video, read_video_list
from slowmask.data.synthetic import CLASSES, render_moving_shape, write_demo_dataset
from tool_scripts import load_tool


def test_tool_writes_decodable_videos_and_csvs(tmp_path):
    load_tool("make_demo_data").main([str(tmp_path), "--videos-per-class", "2"])
    for split, per_class in (("train", 2), ("val", 1), ("test", 1)):
        videos = read_video_list(str(tmp_path / f"{split}.csv"))
        assert sorted(label for _, label in videos) == sorted(list(range(len(CLASSES))) * per_class)
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


def test_unlabelled_videos_lie_beside_the_labelled_ones_in_no_list(tmp_path):
    splits = write_demo_dataset(str(tmp_path), videos_per_class=1, num_frames=8, height=16, width=16,
                                unlabelled_per_class=2, val_per_class=1, test_per_class=3)
    counts = {split: len(rows) for split, rows in splits.items()}
    assert counts == {"train": 4, "val": 4, "test": 12, "unlabelled": 8}
    listed = {path for path, _ in read_video_list(str(tmp_path / "train.csv"))}
    folder = {str(path) for path in (tmp_path / "videos" / "train").iterdir()}
    assert listed < folder and folder - listed == {path for path, _ in splits["unlabelled"]}
    assert {label for _, label in splits["unlabelled"]} == {-1}
