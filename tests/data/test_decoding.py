import logging
import os

import pytest
import torch
from backends import BACKENDS, TORCHCODEC
from counting_video import VFR_TIMES_MS, frame_numbers

from slowmask.data.decoders import video as decoding
from slowmask.data.decoders.video import DecodeError, open_video, resized_shape



def _demo_video(demo_data_dir: str) -> str:
    return os.path.join(demo_data_dir, "videos", "train", "square_horizontal_001.mp4")


@pytest.mark.parametrize("other", ["decord", TORCHCODEC])
@pytest.mark.parametrize("short_side, max_mean_diff", [(0, 1.0), (32, 2.0)])
def test_backends_give_the_same_frames(demo_data_dir, other, short_side, max_mean_diff):
    """All decode with FFmpeg: identical at native size; resized, within the rounding of
    their resize filters (mean absolute difference under 2 of 255 grey levels)."""
    indices = [40, 0, 17, 17, 3, 47, 25]
    with open_video(_demo_video(demo_data_dir), "pyav", short_side) as video:
        pyav_frames = video.get_frames(indices)
    with open_video(_demo_video(demo_data_dir), other, short_side) as video:
        other_frames = video.get_frames(indices)
    assert pyav_frames.dtype == other_frames.dtype == torch.uint8
    assert pyav_frames.shape == other_frames.shape
    assert (pyav_frames.float() - other_frames.float()).abs().mean() < max_mean_diff


@pytest.mark.parametrize("backend", BACKENDS)
def test_metadata_and_decode_time_resize(demo_data_dir, backend):
    with open_video(_demo_video(demo_data_dir), backend, short_side=32) as video:
        assert video.fps == pytest.approx(30.0)
        assert video.num_frames == 48
        assert video.duration == pytest.approx(1.6)
        assert video.get_frames([0]).shape == (1, 32, 40, 3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_frames_come_in_the_requested_order(counting_video, backend):
    indices = [30, 2, 2, 47, 16, 15]
    with open_video(counting_video, backend) as video:
        assert frame_numbers(video.get_frames(indices)) == indices


def test_pyav_seeking_matches_decoding_from_the_start(counting_video):
    generator = torch.Generator().manual_seed(0)
    with open_video(counting_video, "pyav") as video:
        everything = video.get_frames(range(48))
        for _ in range(20):
            indices = torch.randint(0, 48, (5,), generator=generator)
            assert torch.equal(video.get_frames(indices), everything[indices])


@pytest.mark.parametrize("backend", BACKENDS)
def test_short_video_gives_a_full_clip(short_video, backend):
    with open_video(short_video, backend) as video:
        frames = video.get_frames(range(0, 64, 8))
    assert frames.shape == (8, 32, 64, 3)
    assert frame_numbers(frames) == [0, 8] + [11] * 6


def test_header_that_overstates_the_length_gives_a_full_clip(lying_video):
    """PyAV only: decord counts frames from the index (it is not fooled), but 0.6
    mis-seeks in AVI files; tests/data/test_kinetics_dataset.py covers both backends
    with a video object that overstates its length."""
    with open_video(lying_video, "pyav") as video:
        assert video.num_frames == 480  # what the header says
        past_end = video.get_frames(range(400, 480, 10))
        straddling = video.get_frames(range(40, 56, 2))
    assert past_end.shape == straddling.shape == (8, 32, 64, 3)
    assert frame_numbers(past_end) == [47] * 8
    assert frame_numbers(straddling) == [40, 42, 44, 46, 47, 47, 47, 47]


def test_variable_frame_rate_gives_the_frame_on_screen(vfr_video):
    with open_video(vfr_video, "pyav") as video:
        indices = list(range(video.num_frames))
        frames = video.get_frames(indices)
        fps = video.fps
    expected = [max(k for k, t in enumerate(VFR_TIMES_MS) if t / 1000 <= (i + 0.5) / fps) for i in indices]
    assert frames.shape[0] == len(indices)
    assert frame_numbers(frames) == expected


@pytest.mark.parametrize("backend", BACKENDS)
def test_broken_and_missing_files(corrupt_video, tmp_path, backend):
    with pytest.raises(DecodeError, match="corrupt.mp4"):
        open_video(corrupt_video, backend)
    with pytest.raises(FileNotFoundError, match="absent.mp4"):
        open_video(str(tmp_path / "absent.mp4"), backend)


def test_torchvision_backend_reads_with_pyav_and_says_so_once(counting_video, caplog, monkeypatch):
    monkeypatch.setattr(decoding, "_aliases_logged", set())
    with caplog.at_level(logging.INFO, logger="slowmask.data.decoders.video"):
        for _ in range(2):
            with open_video(counting_video, "torchvision") as video:
                assert type(video).__name__ == "PyAVVideo"
    assert sum("torchvision" in r.getMessage() for r in caplog.records) == 1
    with pytest.raises(ValueError, match="'ffmpeg'.*'pyav'"):
        open_video(counting_video, "ffmpeg")


def test_resized_shape_only_shrinks():
    assert resized_shape(240, 320, 120) == (120, 160)
    assert resized_shape(320, 240, 120) == (160, 120)
    assert resized_shape(64, 80, 256) == (64, 80)
    assert resized_shape(64, 80, 0) == (64, 80)
