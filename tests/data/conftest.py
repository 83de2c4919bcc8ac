"""Fixtures of the data tests: small videos whose frames say their own number, and
videos that are short, lie about their length, run at a variable rate or are broken."""

import struct
from fractions import Fraction

import av
import pytest
from counting_video import COUNTING_SIZE, VFR_TIMES_MS, counting_frames

from slowmask.config import get_cfg
from slowmask.data.video_writer import write_video

@pytest.fixture(scope="session")
def video_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="session")
def counting_video(video_dir) -> str:
    """48 frames at 30 fps, a keyframe every 16."""
    path = str(video_dir / "counting.mp4")
    write_video(path, counting_frames(48), fps=30)
    return path


@pytest.fixture(scope="session")
def short_video(video_dir) -> str:
    """12 frames: shorter than most clip windows."""
    path = str(video_dir / "short.mp4")
    write_video(path, counting_frames(12), fps=30)
    return path


@pytest.fixture(scope="session")
def lying_video(video_dir) -> str:
    """An AVI of 48 frames whose header claims 480 (stream length and total frames)."""
    path = video_dir / "lying.avi"
    write_video(str(path), counting_frames(48), fps=30, options={"bf": "0"})
    data = bytearray(path.read_bytes())
    # AVI 'strh' chunk: dwLength is the 9th 32-bit field of its data; 'avih': dwTotalFrames the 5th.
    for chunk, offset in ((b"strh", 32), (b"avih", 16)):
        start = data.find(chunk) + 8 + offset
        data[start : start + 4] = struct.pack("<I", 480)
    path.write_bytes(bytes(data))
    return str(path)


@pytest.fixture(scope="session")
def vfr_video(video_dir) -> str:
    """A Matroska file (no frame count in its header) with irregular frame times."""
    path = str(video_dir / "vfr.mkv")
    time_base = Fraction(1, 1000)
    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.height, stream.width = COUNTING_SIZE
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = stream.time_base = time_base
        stream.options = {"g": "4"}
        for image, pts in zip(counting_frames(len(VFR_TIMES_MS)), VFR_TIMES_MS):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = pts, time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="session")
def corrupt_video(video_dir) -> str:
    """Bytes that are no video at all."""
    path = video_dir / "corrupt.mp4"
    path.write_bytes(bytes(range(256)) * 64)
    return str(path)


@pytest.fixture
def tiny_cfg(demo_data_dir):
    """Defaults shrunk to the demo data: 4 frames at stride 4, 32 px crops, no workers."""
    cfg = get_cfg()
    cfg.NUM_GPUS = 0
    cfg.RNG_SEED = 7
    cfg.DATA.PATH_TO_DATA_DIR = demo_data_dir
    cfg.DATA.NUM_FRAMES = 4
    cfg.DATA.SAMPLING_RATE = 4
    cfg.DATA.TRAIN_CROP_SIZE = 32
    cfg.DATA.TEST_CROP_SIZE = 32
    cfg.DATA.DECODING_SHORT_SIZE = 48
    cfg.DATA.TRAIN_JITTER_SCALES_RELATIVE = [0.3, 1.0]
    cfg.DATA.TRAIN_JITTER_ASPECT_RELATIVE = [0.75, 1.3333]
    cfg.DATA_LOADER.NUM_WORKERS = 0
    cfg.DATA_LOADER.NUM_RETRIES = 3
    cfg.TRAIN.BATCH_SIZE = 4
    cfg.TEST.BATCH_SIZE = 4
    cfg.TEST.NUM_ENSEMBLE_VIEWS = 2
    cfg.TEST.NUM_SPATIAL_CROPS = 3
    return cfg
