"""Videos whose header cannot be trusted for their length or whose container cannot
seek: raw MPEG-1 (.m1v) and H.264 streams, MPEG-PS/TS, Flash (.swf). Every reader must
count their real frames and return the requested ones (checked by content)."""

import logging

import av
import decord
import pytest
import torch
from counting_video import COUNTING_SIZE, counting_frames, frame_numbers

from slowmask.data.decoders import pyav_video
from slowmask.data.decoders import video as decoding
from slowmask.data.decoders.video import open_video
from slowmask.data.clip_windows import RandomClipSampler

NUM_FRAMES = 40
FPS = 30
# (container format, encoder, encoder options) by file name. The .m1v's maxrate is
# written into its sequence header, and FFmpeg estimates its length from that bit rate.
STREAMS = {
    "estimated.m1v": ("mpeg1video", "mpeg1video", {"maxrate": "200k", "bufsize": "200k"}),
    "raw.h264": ("h264", "libx264", {}),
    "program.mpg": ("mpeg", "mpeg1video", {}),
    "transport.ts": ("mpegts", "mpeg2video", {}),
    "flash.swf": ("swf", "flv", {}),
}
UNSORTED_WITH_REPEATS = [39, 0, 5, 17, 17, 30, 31, 12, 38]


def write_counting_stream(path: str, container_format: str, codec: str, options: dict) -> None:
    """NUM_FRAMES counting frames (frame k is grey 4k) at FPS."""
    with av.open(path, "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.height, stream.width = COUNTING_SIZE
        stream.pix_fmt = "yuv420p"
        stream.options = options
        for image in counting_frames(NUM_FRAMES):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


@pytest.fixture(scope="module")
def streams(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("unindexed")
    paths = {}
    for name, (container_format, codec, options) in STREAMS.items():
        paths[name] = str(folder / name)
        write_counting_stream(paths[name], container_format, codec, options)
    return paths


def test_the_m1v_header_underestimates_its_length(streams):
    """The defect being guarded against: FFmpeg's bit-rate estimate says 3 frames."""
    with av.open(streams["estimated.m1v"]) as container:
        stream = container.streams.video[0]
        assert stream.frames == 0
        assert round(stream.duration * stream.time_base * FPS) == 3


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_pyav_counts_the_frames_and_returns_the_requested_ones(streams, name):
    with open_video(streams[name], "pyav") as video:
        assert video.num_frames == NUM_FRAMES
        assert video.fps == pytest.approx(FPS)
        assert frame_numbers(video.get_frames(UNSORTED_WITH_REPEATS)) == UNSORTED_WITH_REPEATS
        assert frame_numbers(video.get_frames(range(NUM_FRAMES))) == list(range(NUM_FRAMES))


def test_a_sampled_clip_spans_the_whole_m1v(streams):
    """With the estimated 3 frames every clip would be frames 0, 2, 2, 2."""
    sampler = RandomClipSampler(num_frames=4, sampling_rate=8)
    generator = torch.Generator().manual_seed(0)
    with open_video(streams["estimated.m1v"], "pyav") as video:
        indices = sampler(video.num_frames, video.fps, generator)
        numbers = frame_numbers(video.get_frames(indices))
    assert numbers == indices.tolist()
    assert numbers[1:] == [numbers[0] + 8, numbers[0] + 16, numbers[0] + 24]


@pytest.mark.parametrize("name", ["flash.swf", "raw.h264"])
def test_a_container_that_cannot_seek_is_read_forward(streams, name, caplog, monkeypatch):
    with av.open(streams[name]) as container:
        with pytest.raises(av.FFmpegError, match="Operation not permitted"):
            container.seek(0)
    monkeypatch.setattr(pyav_video, "_forward_only_logged", set())
    with caplog.at_level(logging.DEBUG, logger="slowmask.data.decoders.pyav_video"):
        for _ in range(2):
            with open_video(streams[name], "pyav") as video:
                assert frame_numbers(video.get_frames([33, 34])) == [33, 34]
                assert frame_numbers(video.get_frames([7, 2, 7])) == [7, 2, 7]
    forward = [r for r in caplog.records if "reading it forward" in r.getMessage()]
    assert len(forward) == 1 and forward[0].levelno == logging.DEBUG and name in forward[0].getMessage()


def test_an_overstated_length_is_corrected_by_the_decode_and_said(lying_video, caplog):
    """The AVI header claims 480 frames of its 48: a clip past the real end is its last
    frame, once, with a warning; num_frames then gives the real length."""
    with open_video(lying_video, "pyav") as video:
        assert video.num_frames == 480
        with caplog.at_level(logging.WARNING, logger="slowmask.data.decoders.pyav_video"):
            assert frame_numbers(video.get_frames([300, 310])) == [47, 47]
        assert video.num_frames == 48
        assert frame_numbers(video.get_frames([0, 47])) == [0, 47]
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "ends after 48 frames, not the 480" in warning.getMessage()


def test_an_exact_header_is_trusted_without_counting(counting_video, monkeypatch):
    def no_count(self, reason):
        raise AssertionError(f"counted packets: {reason}")

    monkeypatch.setattr(pyav_video.PyAVVideo, "_count_packets", no_count)
    with open_video(counting_video, "pyav") as video:
        assert video.num_frames == 48


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_what_decord_misreads_or_cannot_open_is_read_with_pyav_with_one_warning(streams, name, caplog, monkeypatch):
    """decord 0.6 returns wrong frames from the .m1v, .mpg and .ts, and cannot open
    the .swf nor the raw .h264 ("broken metadata"): PyAV reads them, said once per file."""
    monkeypatch.setattr(decoding, "_fallbacks_warned", set())
    with caplog.at_level(logging.WARNING, logger="slowmask.data.decoders.video"):
        for _ in range(2):
            with open_video(streams[name], "decord") as video:
                assert isinstance(video, pyav_video.PyAVVideo)
                assert video.num_frames == NUM_FRAMES
                assert frame_numbers(video.get_frames(UNSORTED_WITH_REPEATS)) == UNSORTED_WITH_REPEATS
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith("decord cannot ") and streams[name] in warning
    assert warning.endswith("; decoding it with pyav instead")


def test_decord_frames_do_not_depend_on_its_bridge_setting(counting_video):
    """pytorchvideo switches decord's process-wide bridge to torch when imported."""
    with open_video(counting_video, "decord") as video, decord.bridge.use_torch():
        assert frame_numbers(video.get_frames([5, 3, 5])) == [5, 3, 5]
    with open_video(counting_video, "decord") as video:
        assert frame_numbers(video.get_frames([5, 3, 5])) == [5, 3, 5]
