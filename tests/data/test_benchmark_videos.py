"""Videos written from a frame iterator, and the panning-texture videos of the benchmark."""

import os

import numpy as np
import pytest

from slowmask.data.decoders.video import open_video
from slowmask.benchmarks.loader import write_panning_video
from slowmask.data.synthetic import render_panning_texture
from slowmask.data.video_writer import write_video


def test_write_video_takes_an_iterator(tmp_path):
    frames = (np.full((32, 48, 3), 10 * k, dtype=np.uint8) for k in range(12))
    path = str(tmp_path / "iter.mp4")
    write_video(path, frames, fps=30)
    with open_video(path) as video:
        assert video.num_frames == 12
        assert video.get_frames([5]).shape == (1, 32, 48, 3)


def test_write_video_without_frames_says_so(tmp_path):
    with pytest.raises(ValueError, match="no frames"):
        write_video(str(tmp_path / "empty.mp4"), iter([]))


def test_panning_texture_moves_and_has_detail():
    frames = list(render_panning_texture(np.random.default_rng(0), 4, 32, 48))
    assert all(f.shape == (32, 48, 3) and f.dtype == np.uint8 for f in frames)
    assert not np.array_equal(frames[0], frames[3])
    assert frames[0].astype(float).std() > 10


def test_panning_video_is_written_once(tmp_path):
    path = str(tmp_path / "pan.mp4")
    assert write_panning_video(path, seconds=0.5, height=32, width=48) == path
    with open_video(path) as video:
        assert video.num_frames == 15 and video.fps == pytest.approx(30)
    written = os.path.getmtime(path)
    write_panning_video(path, seconds=0.5, height=32, width=48)
    assert os.path.getmtime(path) == written
    assert os.listdir(tmp_path) == ["pan.mp4"]
