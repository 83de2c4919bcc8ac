"""The torchcodec backend where it differs from the shared decoder tests
(tests/data/test_decoding.py and test_rotated_videos.py run it with the others): lengths
its header gets wrong, variable frame rates, containers it would misread, and NVDEC."""

import importlib
import logging
import sys

import av
import pytest
import torch
from backends import needs_torchcodec
from counting_video import COUNTING_SIZE, VFR_TIMES_MS, counting_frames, frame_numbers

from slowmask.config import load_config
from slowmask.config import ConfigError
from slowmask.data.build import build_video_opener
from slowmask.data.decoders.video import DecodeError, open_video

pytestmark = needs_torchcodec


def test_an_overstated_length_is_corrected_by_the_decode_and_said(lying_video, caplog):
    """The AVI header claims 480 frames of its 48 (approximate mode believes it)."""
    with open_video(lying_video, "torchcodec") as video:
        assert video.num_frames == 480
        with caplog.at_level(logging.WARNING, logger="slowmask.data.decoders.torchcodec_video"):
            assert frame_numbers(video.get_frames([300, 310, 40])) == [47, 47, 40]
        assert video.num_frames == 48
        assert frame_numbers(video.get_frames([0, 47])) == [0, 47]
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "ends after 48 frames, not the 480" in warning.getMessage()


def test_a_header_without_a_frame_count_is_counted_and_the_frame_on_screen_returned(vfr_video):
    """A Matroska header has no frame count; its frames come at irregular times. The scan
    counts the 20 frames, and the average rate is theirs (PyAV keeps the header's 30 fps
    and counts 28 positions): the same span of time, within a frame."""
    with open_video(vfr_video, "torchcodec") as video, open_video(vfr_video, "pyav") as reference:
        assert video.num_frames == len(VFR_TIMES_MS)
        assert video.duration == pytest.approx(reference.duration, abs=1 / reference.fps)
        indices = list(range(video.num_frames))
        numbers = frame_numbers(video.get_frames(indices))
    expected = [max(k for k, t in enumerate(VFR_TIMES_MS) if t / 1000 <= (i + 0.5) / video.fps) for i in indices]
    assert numbers == expected


@pytest.mark.parametrize("name, container_format, codec", [("raw.m1v", "mpeg1video", "mpeg1video"),
                                                           ("transport.ts", "mpegts", "mpeg2video")])
def test_a_container_without_a_timeline_is_refused_with_pyav_named(tmp_path, name, container_format, codec):
    path = str(tmp_path / name)
    with av.open(path, "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=30)
        stream.height, stream.width = COUNTING_SIZE
        stream.pix_fmt = "yuv420p"
        for image in counting_frames(12):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    with pytest.raises(DecodeError, match=rf"{name}: a \w+ stream has no timeline.*DATA\.DECODING_BACKEND pyav"):
        open_video(path, "torchcodec")


def test_a_missing_torchcodec_is_one_error_naming_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchcodec.decoders", None)  # as if torchcodec were absent
    monkeypatch.delitem(sys.modules, "slowmask.data.decoders.torchcodec_video")
    with pytest.raises(ImportError, match=r"pip install 'slowmask\[torchcodec\]'.*apt-get install -y ffmpeg"):
        importlib.import_module("slowmask.data.decoders.torchcodec_video")


def test_only_torchcodec_decodes_on_a_gpu(counting_video, tmp_path):
    with pytest.raises(ValueError, match="the pyav backend decodes on the CPU only, not on 'cuda'.*torchcodec"):
        open_video(counting_video, "pyav", device="cuda")
    opts = ["DATA.DECODING_DEVICE", "cuda", "NUM_GPUS", "1", "OUTPUT_DIR", str(tmp_path)]
    with pytest.raises(ConfigError, match='DECODING_DEVICE "cuda" needs DATA.DECODING_BACKEND torchcodec'):
        build_video_opener(load_config(None, opts))
    with pytest.raises(ConfigError, match="set DATA_LOADER.NUM_WORKERS 0.*DATA_LOADER.PIN_MEMORY False"):
        build_video_opener(load_config(None, [*opts, "DATA.DECODING_BACKEND", "torchcodec"]))


@pytest.mark.gpu
@pytest.mark.parametrize("short_side", [0, 32])
def test_nvdec_gives_the_cpu_frames_on_the_gpu(demo_data_dir, short_side):
    """NVDEC's colour conversion rounds differently from swscale's: a grey level or two."""
    path = f"{demo_data_dir}/videos/train/square_horizontal_001.mp4"
    indices = [40, 0, 17, 17, 3, 47, 25]
    with open_video(path, "torchcodec", short_side) as video:
        on_cpu = video.get_frames(indices)
    with open_video(path, "torchcodec", short_side, device="cuda") as video:
        on_gpu = video.get_frames(indices)
    assert on_gpu.device.type == "cuda" and on_gpu.dtype == torch.uint8 and on_gpu.shape == on_cpu.shape
    assert (on_gpu.cpu().float() - on_cpu.float()).abs().mean() < 3.0
