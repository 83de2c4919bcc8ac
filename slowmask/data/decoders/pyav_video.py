"""PyAV backend: seek to the keyframe before each window, decode up to its last frame."""

import bisect
import logging
from typing import Dict, Iterator, List, Optional, Set, Tuple

import av
import numpy as np
import torch

from .timeout import stop_if_abandoned
from .video import (
    MAX_FRAME_PIXELS, DecodeError, Indices, Video, check_frame_size, clamp_indices, resized_shape,
)

logger = logging.getLogger(__name__)

# swscale filter for the decode-time resize (it widens with the scale factor, so
# shrinking is antialiased).
RESIZE_INTERPOLATION = "BILINEAR"
# Index timestamps are decode times, which precede presentation times by the codec's
# reorder delay (a few frames with B-frames): a keyframe closer than this before the
# next requested index is not sought to, lest the seek land after that index.
REORDER_MARGIN = 8
# Container formats without a timeline to trust: without timestamps (raw elementary
# streams: .m1v, .h264, .mjpeg ...) or with discontinuous ones (MPEG-PS/TS, Ogg). FFmpeg
# estimates their length (file size over the codec header's bit rate, or the spread of
# the timestamps found near both ends: off by any factor) and their seeks land off the
# target (an .m1v's made-up timestamps shift by a frame; a .ts loses its first frame):
# their frames are counted and read forward from the start.
UNRELIABLE_TIMELINE_FLAGS = av.format.Flags.no_timestamps.value | av.format.Flags.ts_discont.value
# Files read forward, so that the reason is logged once per file.
_forward_only_logged: Set[str] = set()
# Files whose display rotation cannot be applied, so that it is warned about once per file.
_rotation_warned: Set[str] = set()


# Options of a header-only open: FFmpeg's stream probe (which decodes frames of some
# codecs, H.264 among them, to learn more) reads as little as it may and decodes nothing.
_HEADER_ONLY = {"skip_frame": "all", "probesize": "32", "analyzeduration": "1"}


def check_header_frame_size(path: str, max_pixels: int) -> None:
    """Refuse `path` when its first video stream's frames, as its header gives them, hold
    more than `max_pixels` (0: no limit). Read by an open of its own that decodes
    nothing, as an ordinary open's probe decodes a first frame of any size. A file
    this open cannot read is left to the decoder, which says what is wrong with it.

    Raises:
        FrameTooLarge: see decoding.check_frame_size.
    """
    if max_pixels <= 0:
        return
    try:
        with av.open(path, options=_HEADER_ONLY) as container:
            codec = container.streams.video[0].codec_context
            height, width = codec.height, codec.width
    except (av.FFmpegError, IndexError):
        return
    check_frame_size(path, height, width, max_pixels)


def upright_turns(frame: av.VideoFrame, path: str) -> int:
    """Counterclockwise quarter turns (0 to 3) that show `frame` as it is meant to be
    seen: the rotation of its display matrix (a phone filming upright stores landscape
    frames and a 90 or -90 degree rotation). A rotation that is not a quarter turn, or a
    PyAV too old to read it, leaves the frame as stored, with a warning once per file."""
    degrees = getattr(frame, "rotation", None)
    if degrees is None:
        _warn_rotation(path, f"PyAV {av.__version__} does not read display matrices; a rotated video comes out "
                             "as stored (sideways): install a newer PyAV")
        return 0
    turns, rest = divmod(round(degrees), 90)
    if rest:
        _warn_rotation(path, f"its display matrix rotates by {degrees} degrees, not a quarter turn; its frames "
                             "are read as stored")
        return 0
    return turns % 4


def _warn_rotation(path: str, message: str) -> None:
    if path not in _rotation_warned:
        _rotation_warned.add(path)
        logger.warning("%s: %s", path, message)


class PyAVVideo(Video):
    """A video read with PyAV; frames are located by timestamp.

    A decoded frame sits at position `(pts - start) * time_base * fps`, `start` being
    the first frame's timestamp; in a container without timestamps, whose parser makes
    them up (and skips one now and then), at its place in decode order. Index `i` gets
    the frame within half a position of `i`, or else the last frame before it: for a
    variable-rate stream, the frame on screen at time `i / fps`. Only the stretch from the keyframe before the first
    requested index to the last requested frame is decoded; when the container's index
    shows a keyframe between two requested indices (clips far apart in a long video),
    the reader seeks to it instead of decoding the gap. A container that cannot seek
    (Flash .swf, raw H.264) or has no timeline to seek by (UNRELIABLE_TIMELINE_FLAGS)
    is reopened and decoded forward from its start instead.

    `num_frames` is the container's frame count or, failing that, its duration times
    the frame rate; where that duration is FFmpeg's estimate or missing, the packets
    are counted (a demux, no decoding). A header can still overstate the length (a truncated file, a muxer that wrote a
    wrong count): a decode that meets the end of the stream before a requested index
    lowers `num_frames` to the frames really there and logs a warning naming both
    counts. Requested frames past the end are the last frame, as for a video shorter
    than its window: callers (Kinetics) sample a clip from `num_frames` once per open,
    so that clip ends early but is real footage, and any later sampling from this
    Video uses the true length.

    Frames come out upright: a display matrix's quarter turn (a phone video's rotation)
    is applied after the resize (see `upright_turns`), so H and W are those shown.

    Args:
        path: a local file.
        short_side: frames are converted with their short side shrunk to this (0: native).
        num_threads: decoder threads (0: as many as FFmpeg likes).
        max_frame_pixels: larger frames (by the header) are refused before decoding (0: no limit).
    """

    def __init__(
        self, path: str, short_side: int = 0, num_threads: int = 1, max_frame_pixels: int = MAX_FRAME_PIXELS
    ) -> None:
        self.path = path
        check_header_frame_size(path, max_frame_pixels)
        self._short_side = short_side
        self._num_threads = num_threads
        self._keyframes: Optional[List[float]] = None
        self._seekable = True
        try:
            self._container = av.open(path)
        except av.FFmpegError as e:
            raise DecodeError(f"cannot open {path}: {e}") from e
        try:
            self._read_header()
        except av.FFmpegError as e:
            self._container.close()
            raise DecodeError(f"cannot read the header of {path}: {e}") from e
        except BaseException:
            self._container.close()
            raise

    def _read_header(self) -> None:
        if not self._container.streams.video:
            raise DecodeError(f"{self.path} has no video stream")
        self._stream = self._video_stream(self._container)
        flags = self._container.format.flags
        self._timestamped = not flags & av.format.Flags.no_timestamps.value
        self._fps = self._frame_rate()
        self._time_base = float(self._stream.time_base)
        self._start, self._turns = self._first_frame_facts()
        self._num_frames = max(1, self._frame_count())
        if flags & UNRELIABLE_TIMELINE_FLAGS:
            self._read_forward(f"a {self._container.format.name} stream has no timeline to seek by")

    def _frame_rate(self) -> float:
        stream = self._stream
        if self._timestamped:
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        else:
            # The demuxer's average rate is only its default (25 fps); the codec's rate
            # comes from the bitstream.
            rate = stream.guessed_rate or stream.average_rate
        if not rate:
            raise DecodeError(f"{self.path} reports no frame rate")
        return float(rate)

    def _video_stream(self, container: av.container.InputContainer) -> av.video.stream.VideoStream:
        """The first video stream of `container`, set to decode with this reader's threads."""
        stream = container.streams.video[0]
        stream.codec_context.thread_count = self._num_threads
        if self._num_threads != 1:
            stream.thread_type = "AUTO"
        return stream

    def _first_frame_facts(self) -> Tuple[int, int]:
        """(timestamp of the first frame shown, the origin of frame positions; its upright
        quarter turns). Decoded rather than read from the header: some containers (AVI
        with B-frames) start their frames a tick after the stream's start time, and the
        display matrix reaches PyAV with the decoded frame."""
        for frame in self._container.decode(self._stream):
            turns = upright_turns(frame, self.path)
            return (self._stream.start_time or 0) if frame.pts is None else frame.pts, turns
        raise DecodeError(f"{self.path} has no decodable frame")

    def _frame_count(self) -> int:
        """The header's frame count where the container records one or a duration it
        did not estimate; else the number of packets (see the class docstring)."""
        if self._stream.frames > 0:
            return self._stream.frames
        if self._container.format.flags & UNRELIABLE_TIMELINE_FLAGS:
            return self._count_packets(f"a {self._container.format.name} header's length is an estimate")
        if self._stream.duration:
            return round(self._stream.duration * self._time_base * self._fps)
        if self._container.duration:
            return round(self._container.duration / av.time_base * self._fps)
        return self._count_packets("its header gives no length")

    def _count_packets(self, reason: str) -> int:
        """Frame count by demuxing (no decoding) a second opening of the file, which
        needs no seek back to the start (some containers cannot seek)."""
        with av.open(self.path) as container:
            count = sum(1 for packet in container.demux(container.streams.video[0]) if packet.size)
        logger.debug("%s: %s; counted %d packets", self.path, reason, count)
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
        container without one (or a PyAV without `index_entries`) or read forward: then
        every request is decoded in one pass, as from a single window."""
        if not self._seekable:
            return []
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
        self._seek(self._start + int(first / self._fps / self._time_base))
        pending = wanted[::-1]
        picked: Dict[int, np.ndarray] = {}
        previous, position, cached = None, -1.0, (None, None)
        try:
            for frame in self._container.decode(self._stream):
                stop_if_abandoned()  # a decode past its deadline stops here, frame by frame
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
        else:
            self._found_end(previous, position)
        if previous is None:
            return None
        # The stream ended before the last requested index: repeat its last frame.
        cached = self._convert(previous, cached)
        picked.update((index, cached[1]) for index in pending)
        return picked

    def _seek(self, offset: int) -> None:
        """Go to the keyframe at or before timestamp `offset`; a container that cannot
        seek is reopened instead, to be decoded forward from its start."""
        if self._seekable:
            try:
                self._container.seek(offset, stream=self._stream, backward=True, any_frame=False)
                return
            except av.FFmpegError as e:
                self._read_forward(f"it cannot seek ({e})")
        # A failed seek leaves the demuxer in no known place (at the end, for .swf).
        self._container.close()
        self._container = av.open(self.path)
        self._stream = self._video_stream(self._container)

    def _read_forward(self, reason: str) -> None:
        """From now on, reopen the file for every pass instead of seeking."""
        self._seekable = False
        if self.path not in _forward_only_logged:
            _forward_only_logged.add(self.path)
            logger.debug("%s: %s; reading it forward from its start", self.path, reason)

    def _found_end(self, last: Optional[av.VideoFrame], last_position: float) -> None:
        """The stream ended at frame `last` (None: none decoded), at `last_position`,
        with requested indices left over: a longer `num_frames` was overstated and
        becomes the real length."""
        real = int(round(last_position)) + 1
        if last is None or real >= self._num_frames:
            return
        # One frame short is the rounding of a header duration, not a wrong length.
        level = logging.WARNING if real < self._num_frames - 1 else logging.DEBUG
        logger.log(
            level,
            "%s ends after %d frames, not the %d its header gives; frames asked past the end "
            "repeat the last one, and num_frames is now %d",
            self.path, real, self._num_frames, real,
        )
        self._num_frames = real

    def _position(self, frame: av.VideoFrame, previous: float) -> float:
        if frame.pts is None or not self._timestamped:
            return previous + 1.0
        return (frame.pts - self._start) * self._time_base * self._fps

    def _convert(self, frame: av.VideoFrame, cached: tuple) -> tuple:
        """(frame, its RGB array (H, W, 3)); reuses `cached` when it holds this frame."""
        if cached[0] is frame:
            return cached
        height, width = resized_shape(frame.height, frame.width, self._short_side)
        array = frame.to_ndarray(format="rgb24", width=width, height=height, interpolation=RESIZE_INTERPOLATION)
        # Turned after the resize: a quarter turn keeps the short side short.
        return frame, np.rot90(array, self._turns) if self._turns else array
