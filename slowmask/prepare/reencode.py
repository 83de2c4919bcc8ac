"""Checking and re-encoding single videos with PyAV."""

import os
from fractions import Fraction

import av

from slowmask.data.decoders.video import resized_shape
from slowmask.data.video_writer import pick_encoder


def probe_video(path: str) -> None:
    """Raise (av.FFmpegError, ValueError, OSError) unless `path` has a decodable video frame."""
    with av.open(path) as container:
        if not container.streams.video:
            raise ValueError(f"{path} has no video stream")
        for _ in container.decode(video=0):
            return
    raise ValueError(f"{path} has no decodable frame")


def reencode_video(source: str, target: str, short_side: int, crf: int = 23) -> None:
    """Write `source`'s video stream to `target` (.mp4, H.264 where available) with its
    short side shrunk to `short_side` (never enlarged), at the source frame rate; audio
    is dropped. Written to a temporary name and renamed: `target` exists only complete."""
    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    temporary = f"{target}.tmp-{os.getpid()}.mp4"
    try:
        with av.open(source) as reader, av.open(temporary, "w") as writer:
            stream_in = reader.streams.video[0]
            height, width = resized_shape(stream_in.height, stream_in.width, short_side)
            rate = stream_in.average_rate or Fraction(30)
            codec = pick_encoder()
            stream_out = writer.add_stream(codec, rate=rate)
            stream_out.width, stream_out.height, stream_out.pix_fmt = width, height, "yuv420p"
            if codec == "libx264":
                stream_out.options = {"crf": str(crf)}
            count = 0
            for count, frame in enumerate(reader.decode(stream_in), start=1):
                resized = frame.reformat(width=width, height=height, format="yuv420p")
                resized.pts, resized.time_base = count - 1, 1 / Fraction(rate)
                writer.mux(stream_out.encode(resized))
            writer.mux(stream_out.encode())
        if count == 0:
            raise ValueError(f"{source} has no decodable frame")
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
