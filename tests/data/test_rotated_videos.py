"""Phone videos: landscape frames stored with a display matrix that turns them upright.
Every backend returns the frames as shown; the content is checked, not only the shape.

The videos are written with PyAV's `VideoStream.set_display_rotation`, which records the
matrix in the MP4 track header (tkhd), where phones put it."""

import logging

import av
import numpy as np
import pytest
from backends import BACKENDS

from slowmask.data.decoders import pyav_video
from slowmask.data.decoders.video import open_video

# Stored frames: 128 wide, 64 high (widths decord 0.6 reads), a white block in the
# top-left corner of a black frame.
STORED_HEIGHT, STORED_WIDTH, BLOCK = 64, 128, 24
FRAMES = 4

pytestmark = pytest.mark.skipif(
    not hasattr(av.video.stream.VideoStream, "set_display_rotation"),
    reason="this PyAV cannot write a display matrix (VideoStream.set_display_rotation)",
)


def stored_frame() -> np.ndarray:
    frame = np.zeros((STORED_HEIGHT, STORED_WIDTH, 3), np.uint8)
    frame[:BLOCK, :BLOCK] = 255
    return frame


def write_rotated(path: str, degrees: int) -> str:
    with av.open(path, "w") as container:
        stream = container.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = STORED_WIDTH, STORED_HEIGHT, "yuv420p"
        stream.set_display_rotation(degrees)
        for _ in range(FRAMES):
            for packet in stream.encode(av.VideoFrame.from_ndarray(stored_frame(), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def shrunk(frame: np.ndarray, factor: int) -> np.ndarray:
    height, width, _ = frame.shape
    return frame.reshape(height // factor, factor, width // factor, factor, 3).mean(axis=(1, 3))


def bright_corners(frame: np.ndarray) -> list:
    """The corners of `frame` (H, W, 3) whose square of a quarter of the short side is white."""
    side = min(frame.shape[:2]) // 4
    corners = {"top-left": frame[:side, :side], "top-right": frame[:side, -side:],
               "bottom-left": frame[-side:, :side], "bottom-right": frame[-side:, -side:]}
    return [name for name, square in corners.items() if square.mean() > 200]


# Counterclockwise degrees of the display matrix -> where the stored top-left block is shown.
@pytest.mark.parametrize("degrees, turns, corner", [(90, 1, "bottom-left"), (-90, 3, "top-right"),
                                                    (180, 2, "bottom-right")])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("short_side", [0, 32])
def test_frames_come_out_as_shown(tmp_path, backend, degrees, turns, corner, short_side):
    path = write_rotated(str(tmp_path / f"phone_{degrees}.mp4"), degrees)
    factor = 1 if short_side == 0 else STORED_HEIGHT // short_side
    expected = shrunk(np.rot90(stored_frame(), turns).astype(np.float32), factor)
    with open_video(path, backend, short_side) as video:
        frames = video.get_frames([0, FRAMES - 1]).numpy().astype(np.float32)
    assert frames.shape == (2, *expected.shape)
    for frame in frames:
        assert bright_corners(frame) == [corner]
        # Codec and resize blur the block's edge by a few grey levels on average; the
        # block in a wrong corner would differ by 36 (2 x 7% of the pixels x 255).
        assert np.abs(frame - expected).mean() < 6.0


def test_a_rotation_that_is_no_quarter_turn_is_warned_about_once_per_file(tmp_path, caplog):
    path = write_rotated(str(tmp_path / "tilted.mp4"), 45)
    with caplog.at_level(logging.WARNING, logger=pyav_video.__name__):
        for _ in range(2):
            with open_video(path, "pyav") as video:
                frames = video.get_frames([0]).numpy().astype(np.float32)
    assert frames.shape == (1, STORED_HEIGHT, STORED_WIDTH, 3)
    assert bright_corners(frames[0]) == ["top-left"]
    assert np.abs(frames[0] - stored_frame()).mean() < 6.0
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert warnings == [
        f"{path}: its display matrix rotates by 45 degrees, not a quarter turn; its frames are read as stored"
    ]
