"""decord backend: one `get_batch` call for all requested frames."""

import logging
from typing import Tuple

import decord
import torch

from .video import MAX_FRAME_PIXELS, DecodeError, Indices, ReadWithAnotherBackend, Video, clamp_indices, resized_shape

logger = logging.getLogger(__name__)


def _probe(path: str, upright: bool, max_frame_pixels: int) -> Tuple[int, int]:
    """(height, width) from the container header, read with PyAV (decord has no call
    for it); with `upright`, those of the frames as shown, which takes decoding the
    first frame for its display matrix (a phone video's rotation).

    Raises:
        FrameTooLarge: the header's frames hold more than `max_frame_pixels` (0: no limit).
        DecodeError: PyAV cannot open it either.
        ReadWithAnotherBackend: the container has no timeline decord can seek by (raw
            elementary streams such as .m1v, MPEG-PS/TS, .vob): decord returns wrong frames
            from them; PyAV reads them forward.
    """
    import av

    from .pyav_video import UNRELIABLE_TIMELINE_FLAGS, check_header_frame_size, upright_turns

    check_header_frame_size(path, max_frame_pixels)
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            unreliable = container.format.flags & UNRELIABLE_TIMELINE_FLAGS
            format_name = container.format.name
            size = stream.codec_context.height, stream.codec_context.width
            turns = upright_turns(next(container.decode(stream)), path) if upright and not unreliable else 0
    except (av.FFmpegError, IndexError, StopIteration) as e:
        raise DecodeError(f"cannot open {path}: {str(e) or 'no decodable frame'}") from e
    if unreliable:
        raise ReadWithAnotherBackend(
            f"decord cannot read {path}: a {format_name} stream has no timeline to seek by, and decord "
            "returns wrong frames from it",
            backend="pyav",
        )
    return size[::-1] if turns % 2 else size


def _reason(error: Exception) -> str:
    """decord's message without its time, source line and path prefixes
    ("[10:01:02] src/video/video_reader.cc:270: [a.gif] Failed to ...")."""
    return str(error).strip().rsplit("] ", 1)[-1] or type(error).__name__


class DecordVideo(Video):
    """A video read with decord; frame index `i` is the i-th frame in decode order.

    decord 0.6 has known faults that PyAV does not share: it fails on some native
    frame widths (48 px, for one), returns wrong frames after seeking in AVI files, and
    from containers without a timeline to seek by (raw .m1v/.h264 streams, MPEG-PS/TS),
    and cannot open some files PyAV reads (GIF, Flash .swf): those raise
    ReadWithAnotherBackend, and `open_video` reads them with PyAV.

    decord turns the frames of a video whose display matrix rotates by a quarter turn
    (a phone video) upright itself, and takes the size asked in that orientation: the
    reader asks for the shown frame's size, so H and W are those shown, as with PyAV.

    Args:
        path: a local file.
        short_side: frames are decoded with their short side shrunk to this (0: native).
        num_threads: decoder threads (0: as many as decord likes).
        max_frame_pixels: larger frames (by the header) are refused before decoding (0: no limit).
    """

    def __init__(
        self, path: str, short_side: int = 0, num_threads: int = 1, max_frame_pixels: int = MAX_FRAME_PIXELS
    ) -> None:
        self.path = path
        if short_side > 0:
            height, width = resized_shape(*_probe(path, True, max_frame_pixels), short_side)
        else:
            _probe(path, False, max_frame_pixels)
            height, width = -1, -1
        try:
            self._reader = decord.VideoReader(path, width=width, height=height, num_threads=num_threads)
            self._fps = float(self._reader.get_avg_fps())
        except (decord.DECORDError, RuntimeError, ValueError, IndexError, AssertionError) as e:
            # PyAV has just read the header, so it is worth a try (a Flash .swf, a GIF).
            raise ReadWithAnotherBackend(
                f"decord cannot open {path} ({_reason(e)}), although PyAV reads its header",
                backend="pyav",
            ) from e
        if self._fps <= 0:
            raise DecodeError(f"{path} reports no frame rate")

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def num_frames(self) -> int:
        return len(self._reader)

    def close(self) -> None:
        # decord frees its file handle when the reader is collected.
        self._reader = None

    def get_frames(self, indices: Indices) -> torch.Tensor:
        """uint8 (T, H, W, 3) frames at `indices`, clamped to the last frame."""
        order = clamp_indices(indices).clamp(max=len(self._reader) - 1)
        if order.numel() == 0:
            raise ValueError("get_frames needs at least one index")
        wanted, inverse = torch.unique(order, return_inverse=True)
        try:
            # The torch bridge for this call only: what get_batch returns otherwise
            # follows a process-wide setting (pytorchvideo sets it when imported).
            with decord.bridge.use_torch():
                frames = self._reader.get_batch(wanted.tolist())
        except (decord.DECORDError, RuntimeError) as e:
            raise DecodeError(f"cannot decode {self.path}: {e}") from e
        return frames[inverse]
