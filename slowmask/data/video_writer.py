"""Writing videos: uint8 RGB frames encoded with PyAV into .mp4, .avi or .mkv files, for
the demo data, the tests' and benchmarks' videos, and the visualizations."""

import itertools
import os
from typing import Dict, Iterable, Optional, Union

import av
import numpy as np
from iopath.common.file_io import g_pathmgr

# Container format of each file extension (a file object carries no name to guess from).
CONTAINER_FORMATS = {".mp4": "mp4", ".avi": "avi", ".mkv": "matroska"}
# Encoders in order of preference.
ENCODERS = ("libx264", "mpeg4")


def pick_encoder() -> str:
    """The first encoder of ENCODERS that this FFmpeg build has."""
    for name in ENCODERS:
        try:
            av.codec.Codec(name, "w")
            return name
        except (av.FFmpegError, ValueError):
            continue
    raise RuntimeError(f"none of the encoders {ENCODERS} is available in this PyAV build")


def write_video(
    path: str,
    frames: Union[np.ndarray, Iterable[np.ndarray]],
    fps: int = 30,
    codec: Optional[str] = None,
    gop: int = 16,
    options: Optional[Dict[str, str]] = None,
) -> None:
    """Encode uint8 frames (T, H, W, 3), or an iterable of (H, W, 3) frames, to `path`
    (.mp4, .avi or .mkv; H and W even).

    A keyframe every `gop` frames, so that readers really seek; `options` go to the
    encoder (e.g. {"bf": "0"} for no B-frames, which AVI cannot time).
    """
    extension = os.path.splitext(path)[1].lower()
    if extension not in CONTAINER_FORMATS:
        raise ValueError(f"cannot write {path}: extension must be one of {', '.join(CONTAINER_FORMATS)}")
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise ValueError(f"cannot write {path}: no frames")
    height, width, _ = first.shape
    with g_pathmgr.open(path, "wb") as f, av.open(f, "w", format=CONTAINER_FORMATS[extension]) as container:
        stream = container.add_stream(codec or pick_encoder(), rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"g": str(gop), **(options or {})}
        for image in itertools.chain([first], frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")))
        container.mux(stream.encode())
