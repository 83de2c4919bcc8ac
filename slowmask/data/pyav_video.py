"""PyAV backend: seek to the keyframe before each window, decode up to its last frame."""

import bisect
import logging
from typing import Dict, Iterator, List, Optional

import av
import numpy as np
import torch

from .decoding import DecodeError, Indices, Video, clamp_indices, resized_shape

logger = logging.getLogger(__name__)

# swscale filter for the decode-time resize (it widens with the scale factor, so
# shrinking is antialiased).
RESIZE_INTERPOLATION = "BILINEAR"
# Index timestamps are decode times, which precede presentation times by the codec's
# reorder delay (a few frames with B-frames): a keyframe closer than this before the
# next requested index is not sought to, lest the seek land after that index.
REORDER_MARGIN = 8


class PyAVVideo(Video):
    """A video read with PyAV; frames are located by timestamp.

    A decoded frame sits at position `(pts - start) * time_base * fps`, `start` being
    the first frame's timestamp. Index `i` gets the frame within half a position of
    `i`, or else the last frame before it: for a variable-rate stream, the frame on
    screen at time `i / fps`. Only the stretch from the keyframe before the first
    requested index to the last requested frame is decoded; when the container's index
    shows a keyframe between two requested indices (clips far apart in a long video),
    the reader seeks to it instead of decoding the gap.

    Args:
        path: a local file.
        short_side: frames are converted with their short side shrunk to this (0: native).
        num_threads: decoder threads (0: as many as FFmpeg likes).
    """

    def __init__(self, path: str, short_side: int = 0, num_threads: int = 1) -> None:
        self.path = path
        self._short_side = short_side
        self._keyframes: Optional[List[float]] = None
        try:
            self._container = av.open(path)
        except av.FFmpegError as e:
            raise DecodeError(f"cannot open {path}: {e}") from e
        try:
            self._read_header(num_threads)
        except av.FFmpegError as e:
            self._container.close()
            raise DecodeError(f"cannot read the header of {path}: {e}") from e
        except BaseException:
            self._container.close()
            raise

    def _read_header(self, num_threads: int) -> None:
        if not self._container.streams.video:
            raise DecodeError(f"{self.path} has no video stream")
        stream = self._container.streams.video[0]
        stream.codec_context.thread_count = num_threads
        if num_threads != 1:
            stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate:
            raise DecodeError(f"{self.path} reports no frame rate")
        self._stream = stream
        self._fps = float(rate)
        self._time_base = float(stream.time_base)
        self._start = self._first_pts()
        self._num_frames = max(1, self._frames_from_header() or self._count_packets())

    def _first_pts(self) -> int:
        """Timestamp of the first frame shown, the origin of frame positions. Decoded
        rather than read from the header: some containers (AVI with B-frames) start
        their frames a tick after the stream's start time."""
        for frame in self._container.decode(self._stream):
            if frame.pts is not None:
                return frame.pts
            break
        else:
            raise DecodeError(f"{self.path} has no decodable frame")
        return self._stream.start_time or 0

    def _frames_from_header(self) -> int:
        if self._stream.frames > 0:
            return self._stream.frames
        if self._stream.duration:
            return round(self._stream.duration * self._time_base * self._fps)
        if self._container.duration:
            return round(self._container.duration / av.time_base * self._fps)
        return 0

    def _count_packets(self) -> int:
        """Frame count by demuxing (no decoding), for containers without a length."""
        self._container.seek(0)
        count = sum(1 for packet in self._container.demux(self._stream) if packet.size)
        logger.debug("%s has no length in its header; counted %d packets", self.path, count)
        return count

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def num_frames(self) -> int:
        return self._num_frames

    def close(self) -> None:
        self._container.close()

    def get_frames(self, indices: Indices) -> torch.Tensor:
        """uint8 (T, H, W, 3) frames at `indices` (see the class docstring)."""
        order = clamp_indices(indices).tolist()
        if not order:
            raise ValueError("get_frames needs at least one index")
        picked: Dict[int, np.ndarray] = {}
        try:
            for run in self._runs(sorted(set(order))):
                found = self._scan(run, from_start=False)
                if found is None:
                    # The seek landed after the window (imprecise index) or past the end.
                    found = self._scan(run, from_start=True)
                if found is None:
                    raise DecodeError(f"no frame could be decoded from {self.path}")
                picked.update(found)
        except av.FFmpegError as e:
            raise DecodeError(f"cannot decode {self.path}: {e}") from e
        return torch.from_numpy(np.stack([picked[i] for i in order]))

    def _runs(self, wanted: List[int]) -> Iterator[List[int]]:
        """The sorted indices `wanted` cut where a keyframe lies between two of them:
        each run is decoded in one pass from the keyframe before its first index."""
        keyframes = self._keyframe_positions()
        run = [wanted[0]]
        for index in wanted[1:]:
            # A keyframe in (previous, index - margin]: seeking there skips the frames between.
            if bisect.bisect_right(keyframes, index - REORDER_MARGIN) > bisect.bisect_right(keyframes, run[-1]):
                yield run
                run = []
            run.append(index)
        yield run

    def _keyframe_positions(self) -> List[float]:
        """Sorted frame positions of the keyframes in the container's index; empty for a
        container without one (or a PyAV without `index_entries`): then every request
        is decoded in one pass, as from a single window."""
        if self._keyframes is None:
            entries = getattr(self._stream, "index_entries", ())
            self._keyframes = sorted(
                (entry.timestamp - self._start) * self._time_base * self._fps for entry in entries if entry.is_keyframe
            )
        return self._keyframes

    def _scan(self, wanted: List[int], from_start: bool) -> Optional[Dict[int, np.ndarray]]:
        """RGB arrays for the sorted indices `wanted`, or None when the pass found no
        frame at or before `wanted[0]` (after a seek) or no frame at all."""
        first = 0 if from_start else wanted[0]
        offset = self._start + int(first / self._fps / self._time_base)
        self._container.seek(offset, stream=self._stream, backward=True, any_frame=False)
        pending = wanted[::-1]
        picked: Dict[int, np.ndarray] = {}
        previous, position, cached = None, -1.0, (None, None)
        try:
            for frame in self._container.decode(self._stream):
                position = self._position(frame, position)
                if previous is None and not from_start and position > wanted[0] + 0.5:
                    return None
                while pending and pending[-1] + 0.5 < position:  # skipped over: the frame before
                    cached = self._convert(frame if previous is None else previous, cached)
                    picked[pending.pop()] = cached[1]
                while pending and pending[-1] <= position + 0.5:  # this frame is on screen then
                    cached = self._convert(frame, cached)
                    picked[pending.pop()] = cached[1]
                if not pending:
                    return picked
                previous = frame
        except av.FFmpegError as e:
            if previous is None:
                raise
            logger.warning("%s: decoding stopped at a broken packet (%s); repeating its last frame", self.path, e)
        if previous is None:
            return None
        # The stream ended before the last requested index: repeat its last frame.
        cached = self._convert(previous, cached)
        picked.update((index, cached[1]) for index in pending)
        return picked

    def _position(self, frame: av.VideoFrame, previous: float) -> float:
        if frame.pts is None:
            return previous + 1.0
        return (frame.pts - self._start) * self._time_base * self._fps

    def _convert(self, frame: av.VideoFrame, cached: tuple) -> tuple:
        """(frame, its RGB array (H, W, 3)); reuses `cached` when it holds this frame."""
        if cached[0] is frame:
            return cached
        height, width = resized_shape(frame.height, frame.width, self._short_side)
        array = frame.to_ndarray(format="rgb24", width=width, height=height, interpolation=RESIZE_INTERPOLATION)
        return frame, array
