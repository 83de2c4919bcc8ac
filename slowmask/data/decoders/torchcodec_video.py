"""torchcodec backend: frames located by time in torchcodec's approximate seek mode, decoded
on the CPU or, for a clip whose destination is a GPU, by the GPU's video decoder (NVDEC).

Approximate mode trusts the container's header for the length and the seek targets,
which saves the scan of every packet that exact mode does when a file is opened: for
the indexed containers of video datasets (MP4, MKV, WebM) that is the whole cost of
opening a short clip. Where the header holds no frame count, the file is scanned
(exact mode), so that the count is real; containers without a timeline to trust are
refused, as torchcodec returns wrong frames from them.
"""

import logging
from typing import List, Optional, Set, Tuple

import torch

from .video import MAX_FRAME_PIXELS, DecodeError, Indices, Video, clamp_indices, resized_shape
from .pyav_video import check_header_frame_size

try:
    from torchcodec.decoders import VideoDecoder
    from torchcodec.transforms import Resize
except (ImportError, RuntimeError, OSError) as error:  # torchcodec loads FFmpeg's libraries when imported
    raise ImportError(
        f"the torchcodec decoding backend cannot load ({error}); it needs torchcodec (pip install "
        "'slowmask[torchcodec]') and the system's FFmpeg 4-8 libraries (apt-get install -y ffmpeg): see INSTALL.md"
    ) from error

logger = logging.getLogger(__name__)

# What torchcodec raises for a file it cannot open, a frame it cannot reach or a stream
# that ends before the header says.
DECODER_ERRORS = (RuntimeError, ValueError, IndexError)
# Files whose display rotation is not a quarter turn, so that it is warned about once per file.
_rotation_warned: Set[str] = set()


def _check_timeline(path: str) -> None:
    """Refuse a container whose timestamps cannot be trusted (raw elementary streams,
    MPEG-PS/TS, Ogg): read its format's flags with PyAV, as the decord backend does."""
    import av

    from .pyav_video import UNRELIABLE_TIMELINE_FLAGS

    try:
        with av.open(path) as container:
            unreliable = container.format.flags & UNRELIABLE_TIMELINE_FLAGS
            format_name = container.format.name
    except av.FFmpegError as error:
        raise DecodeError(f"cannot open {path}: {error}") from error
    if unreliable:
        raise DecodeError(
            f"torchcodec cannot read {path}: a {format_name} stream has no timeline to seek by, and torchcodec "
            "returns wrong frames from it; decode it with PyAV (DATA.DECODING_BACKEND pyav)"
        )


class TorchCodecVideo(Video):
    """A video read with torchcodec; index `i` is the frame on screen half a frame after
    time `i / fps` from the stream's start (the frame at position i, or the one shown in
    its place in a variable-rate stream), as the PyAV backend reads it.

    `num_frames` is the header's count; where the header has none, the packets are
    counted (exact mode's scan). A header that overstates the length shows when a
    decode meets the end of the stream: the file is then scanned, `num_frames` lowered
    to the real count with a warning, and the frames asked past the end are the last one.
    Frames come out upright (torchcodec applies the display matrix), resized while
    decoding with torchcodec's bilinear, antialiased resize.

    Args:
        path: a local file.
        short_side: frames are decoded with their short side shrunk to this (0: native).
        num_threads: FFmpeg decoder threads (0: as many as FFmpeg likes); none on a GPU.
        device: "cpu", or "cuda" to decode with NVDEC on this process's current GPU: the
            frames are then CUDA tensors.
        max_frame_pixels: larger frames (by the header) are refused before decoding (0: no limit).
    """

    def __init__(
        self, path: str, short_side: int = 0, num_threads: int = 1, device: str = "cpu",
        max_frame_pixels: int = MAX_FRAME_PIXELS,
    ) -> None:
        self.path = path
        self._num_threads = num_threads
        self._device = torch.device("cuda", torch.cuda.current_device()) if device == "cuda" else torch.device(device)
        self._size: Optional[Tuple[int, int]] = None
        self._exact = False
        check_header_frame_size(path, max_frame_pixels)  # torchcodec's open probes a frame of any size
        decoder = self._open()
        metadata = decoder.metadata
        if not metadata.num_frames_from_header:
            _check_timeline(path)
            self._exact = True
            logger.debug("%s: its header gives no frame count; scanning its packets", path)
        native = (metadata.height, metadata.width)
        if resized_shape(*native, short_side) != native:
            self._size = resized_shape(*native, short_side)
        if self._exact or self._size is not None:
            decoder = self._open()
        self._take(decoder)
        self._warn_rotation(metadata.rotation)

    def _open(self) -> VideoDecoder:
        transforms = [Resize(self._size)] if self._size is not None else None
        try:
            return VideoDecoder(
                self.path, seek_mode="exact" if self._exact else "approximate", dimension_order="NHWC",
                num_ffmpeg_threads=self._num_threads, device=self._device, transforms=transforms,
            )
        except DECODER_ERRORS as error:
            reason = str(error).strip().splitlines()[0]  # its further lines are torchcodec's request for a report
            raise DecodeError(
                f"torchcodec cannot open {self.path} ({reason}); if PyAV reads it, use DATA.DECODING_BACKEND pyav"
            ) from error

    def _take(self, decoder: VideoDecoder) -> None:
        metadata = decoder.metadata
        if not metadata.average_fps or metadata.average_fps <= 0:
            raise DecodeError(f"{self.path} reports no frame rate")
        self._decoder = decoder
        self._fps = float(metadata.average_fps)
        self._start = float(metadata.begin_stream_seconds or 0.0)
        self._num_frames = max(1, int(metadata.num_frames))

    def _warn_rotation(self, degrees: Optional[float]) -> None:
        if degrees is not None and round(degrees) % 90 and self.path not in _rotation_warned:
            _rotation_warned.add(self.path)
            logger.warning("%s: its display matrix rotates by %s degrees, not a quarter turn; torchcodec turns "
                           "it by the nearest quarter turn (PyAV reads it as stored)", self.path, degrees)

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def num_frames(self) -> int:
        return self._num_frames

    def close(self) -> None:
        # torchcodec closes its file when the decoder is collected.
        self._decoder = None

    def get_frames(self, indices: Indices) -> torch.Tensor:
        """uint8 (T, H, W, 3) frames at `indices`, clamped to the last frame; on the
        decoding device."""
        order = clamp_indices(indices)
        if order.numel() == 0:
            raise ValueError("get_frames needs at least one index")
        try:
            return self._decode(order)
        except DECODER_ERRORS as error:
            if self._exact:
                raise DecodeError(f"cannot decode {self.path}: {error}") from error
        self._recount()
        try:
            return self._decode(order)
        except DECODER_ERRORS as error:
            raise DecodeError(f"cannot decode {self.path}: {error}") from error

    def _decode(self, order: torch.Tensor) -> torch.Tensor:
        wanted, inverse = torch.unique(order.clamp(max=self._num_frames - 1), return_inverse=True)
        # Half a frame after the frame's time: the frame on screen then, whichever way the
        # seconds round, and a stream that starts a tick late still finds its first frame.
        seconds: List[float] = (self._start + (wanted.double() + 0.5) / self._fps).tolist()
        frames = self._decoder.get_frames_played_at(seconds).data  # (N, H, W, 3)
        return frames[inverse.to(frames.device)]

    def _recount(self) -> None:
        """The stream ended before a requested frame: scan it for its real length."""
        self._exact = True
        header = self._num_frames
        self._take(self._open())
        if self._num_frames < header:
            logger.warning(
                "%s ends after %d frames, not the %d its header gives; frames asked past the end repeat the last "
                "one, and num_frames is now %d", self.path, self._num_frames, header, self._num_frames,
            )
