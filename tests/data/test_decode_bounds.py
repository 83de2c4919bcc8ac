"""What a decode may cost is bounded: frames over DATA.MAX_FRAME_PIXELS are refused from
the header before any is decoded; an abandoned PyAV decode stops at its next frame; and
abandoned decodes still running in a process are bounded, past which the run stops with a
data error naming the video and the fix."""

import functools
import threading
import time

import numpy as np
import pytest
from backends import BACKENDS

from slowmask.data import DecodeError, Kinetics, open_video, read_video_list
from slowmask.data.clip_windows import RandomClipSampler
from slowmask.data.decoders.timeout import DecodeTimeout, StuckDecodes, call_with_timeout
from slowmask.data.decoders.video import FrameTooLarge
from slowmask.data.decoders.pyav_video import PyAVVideo
from slowmask.data.transforms import RandomResizedBox, TrainTransform
from slowmask.data.video_writer import write_video

HEIGHT, WIDTH = 128, 192


@pytest.fixture(scope="module")
def header_only_video(tmp_path_factory):
    """A Matroska file cut inside its first frame: the header (128 x 192 frames) is whole,
    no frame can be decoded."""
    path = tmp_path_factory.mktemp("big") / "header_only.mkv"
    noise = np.random.default_rng(0).integers(0, 256, (4, HEIGHT, WIDTH, 3), dtype=np.uint8)
    write_video(str(path), noise)
    data = path.read_bytes()
    path.write_bytes(data[:2000])
    assert len(data) > 20000  # the cut fell inside the frames
    return str(path)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_video_over_the_pixel_limit_is_refused_from_its_header_before_any_frame_is_decoded(
    header_only_video, backend
):
    limit = HEIGHT * WIDTH - 1
    with pytest.raises(FrameTooLarge) as refused:
        open_video(header_only_video, backend, max_frame_pixels=limit)
    assert str(refused.value) == (
        f"{header_only_video} has frames of 192 x 128 = 24,576 pixels, more than DATA.MAX_FRAME_PIXELS (24,575); "
        "refused before decoding: shrink the video (ffmpeg -vf scale) or raise DATA.MAX_FRAME_PIXELS"
    )
    # Admitted, the same file fails in its frames: the refusal above came before them.
    with pytest.raises(DecodeError) as failed:
        open_video(header_only_video, backend, short_side=64, max_frame_pixels=0)
    assert not isinstance(failed.value, FrameTooLarge)


def test_a_refused_video_is_replaced_like_any_unreadable_one(demo_data_dir, header_only_video, caplog):
    demo_video = read_video_list(f"{demo_data_dir}/train.csv")[0]
    limit = 64 * 80  # a demo video's frames; the header-only video's are larger
    transform = TrainTransform(32, RandomResizedBox((0.5, 1.0), (0.75, 1.33)), [0.45] * 3, [0.225] * 3)
    dataset = Kinetics([(header_only_video, 0), demo_video], RandomClipSampler(4, 2, 30), transform,
                       decode_timeout=0, num_retries=1,
                       open_video=functools.partial(open_video, max_frame_pixels=limit))
    item = dataset[0]
    assert item["meta"]["skipped"] == [header_only_video]
    assert tuple(item["clip"].shape) == (3, 4, 32, 32)
    assert f"skipping unreadable video {header_only_video} (FrameTooLarge: " in caplog.text


@pytest.fixture
def release():
    event = threading.Event()
    yield event
    event.set()


def decode_threads():
    return sum(thread.name == "slowmask-decode" for thread in threading.enumerate())


def wait_for_decode_threads(at_most):
    deadline = time.monotonic() + 5
    while decode_threads() > at_most:
        assert time.monotonic() < deadline, "released threads did not end"
        time.sleep(0.01)


def test_abandoned_decodes_still_running_are_bounded_and_the_next_one_stops_the_run(release):
    """Each call blocks until `release`, as a decoder stuck inside FFmpeg does."""
    wait_for_decode_threads(1)  # those other tests abandoned have ended; this process's helper may wait
    for number in range(1, 3):
        with pytest.raises(DecodeTimeout):
            call_with_timeout(release.wait, 0.05, f"stuck{number}.mp4", max_stuck=2)
    with pytest.raises(StuckDecodes) as stopped:
        call_with_timeout(release.wait, 0.05, "stuck3.mp4", max_stuck=2)
    assert str(stopped.value).startswith(
        "3 decodes abandoned after DATA_LOADER.DECODE_TIMEOUT (0.05 s) still run in process "
    )
    assert "the latest of stuck3.mp4" in str(stopped.value) and "DATA.MAX_FRAME_PIXELS" in str(stopped.value)
    assert stopped.value.exit_status == 3
    assert decode_threads() == 3  # the bound, 2, and the one that passed it
    release.set()
    wait_for_decode_threads(0)
    assert call_with_timeout(lambda: 7, 1.0, "fine.mp4", max_stuck=2) == 7  # none left: decoding goes on


def test_an_abandoned_pyav_decode_stops_at_its_next_frame(demo_data_dir, monkeypatch):
    path = read_video_list(f"{demo_data_dir}/train.csv")[0][0]
    converted = []
    convert = PyAVVideo._convert
    monkeypatch.setattr(PyAVVideo, "_convert", lambda self, *a: converted.append(1) or convert(self, *a))
    finished = threading.Event()

    def slow_start_then_decode():
        time.sleep(0.3)  # past the deadline: abandoned before its first frame
        try:
            with open_video(path) as video:
                return video.get_frames(range(48))
        finally:
            finished.set()

    with pytest.raises(DecodeTimeout):
        call_with_timeout(slow_start_then_decode, 0.05, path)
    assert finished.wait(5)
    assert converted == []
