"""The decoder interface: a `Video` that returns uint8 frames by index.

Three backends implement it, each in its own file and imported only when chosen:
PyAV (`pyav_video.py`), decord (`decord_video.py`) and torchcodec (`torchcodec_video.py`,
an optional extra, the one that can decode on a GPU). Frame index `i` means the frame
shown at time `i / fps` from the start of the stream.

A backend that would misread a file, or cannot open one another backend reads (decord and
MPEG program streams, raw elementary streams, GIF, Flash), raises `ReadWithAnotherBackend`:
`open_video` opens the file with the backend it names, with one warning per file, so a run
loses no video to its backend's faults.
"""

import importlib
import logging
from abc import ABC, abstractmethod
from typing import Sequence, Set, Tuple, Union

import torch
from iopath.common.file_io import g_pathmgr
from slowmask.utils.errors import SlowmaskError

logger = logging.getLogger(__name__)

# Backend name -> (module in this package, Video class), imported only when used.
BACKENDS = {
    "pyav": (".pyav_video", "PyAVVideo"),
    "decord": (".decord_video", "DecordVideo"),
    "torchcodec": (".torchcodec_video", "TorchCodecVideo"),
}
# Decoding devices other than the CPU -> the backends that decode there (their Video
# takes a `device` argument).
DEVICE_BACKENDS = {"cuda": ("torchcodec",)}
# PySlowFast's names that slowmask reads with another backend.
BACKEND_ALIASES = {"torchvision": "pyav"}
_aliases_logged = set()
# Files opened with another backend than the configured one, so that it is warned about once per file.
_fallbacks_warned: Set[str] = set()

Indices = Union[Sequence[int], torch.Tensor]


class DecodeError(SlowmaskError, RuntimeError):
    """A video that exists but cannot be read: corrupt, truncated, no video stream."""

    kind = "data"


class FrameTooLarge(DecodeError):
    """A video whose frames hold more pixels than the limit, refused from its header
    before any frame is decoded (one 8000 x 8000 RGB frame is 192 MB)."""


# The frame size a decoder admits when none is given: 4096 x 4096, which admits every
# 4K format (3840 x 2160, 4096 x 2160) and refuses 8K.
MAX_FRAME_PIXELS = 4096 * 4096


def check_frame_size(path: str, height: int, width: int, max_pixels: int) -> None:
    """Refuse `path` when its header's `height` x `width` exceeds `max_pixels` (0: no limit).

    Raises:
        FrameTooLarge: named with the size, the limit and the key that sets it.
    """
    if max_pixels > 0 and height * width > max_pixels:
        raise FrameTooLarge(
            f"{path} has frames of {width} x {height} = {width * height:,} pixels, more than "
            f"DATA.MAX_FRAME_PIXELS ({max_pixels:,}); refused before decoding: shrink the video "
            "(ffmpeg -vf scale) or raise DATA.MAX_FRAME_PIXELS"
        )


class ReadWithAnotherBackend(DecodeError):
    """A file this backend would misread or cannot open, and `backend` reads: `open_video`
    opens it with that one instead."""

    def __init__(self, message: str, backend: str) -> None:
        super().__init__(message)
        self.backend = backend


class Video(ABC):
    """An opened video; use it as a context manager so the file is always closed.

    `get_frames(indices)` returns uint8 frames of shape (T, H, W, 3), RGB, one per
    requested index, in the order requested (repeats allowed). Indices past the
    last frame that really exists give the last frame, so a clip always has T frames
    even when the video is shorter than the window or its header overstates its length.

    Callers sample a clip's indices from `num_frames` before decoding (see
    clip_windows.py), so a wrong length makes wrong clips: one understated makes every clip
    out of the first frames, one overstated makes clips of the last frame repeated.
    Readers therefore count the frames (or refuse the file) where the header only
    holds an estimate, and a reader whose decode meets the end of the stream earlier
    than `num_frames` lowers `num_frames` to the real length and logs a warning: the
    clip in hand keeps its repeated last frame (as for a short video), later samplings
    use the real length.
    """

    @property
    @abstractmethod
    def fps(self) -> float:
        """Native frame rate (average rate for a variable-rate stream)."""

    @property
    @abstractmethod
    def num_frames(self) -> int:
        """Number of frames (at least 1): the container's record, or a count where the
        header's length is only an estimate; lowered when a decode finds fewer."""

    @property
    def duration(self) -> float:
        """Length in seconds, from `num_frames` and `fps`."""
        return self.num_frames / self.fps

    @abstractmethod
    def get_frames(self, indices: Indices) -> torch.Tensor:
        """uint8 (T, H, W, 3) frames at the given native-rate indices."""

    @abstractmethod
    def close(self) -> None:
        """Release the file; the video cannot be read afterwards."""

    def __enter__(self) -> "Video":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def resolve_backend(name: str) -> str:
    """The backend that reads videos for a DATA.DECODING_BACKEND value."""
    if name in BACKEND_ALIASES:
        if name not in _aliases_logged:
            _aliases_logged.add(name)
            logger.info("decoding backend %r is read with %r", name, BACKEND_ALIASES[name])
        return BACKEND_ALIASES[name]
    if name not in BACKENDS:
        valid = ", ".join(map(repr, [*BACKENDS, *BACKEND_ALIASES]))
        raise ValueError(f"unknown decoding backend {name!r}; valid: {valid}")
    return name


def resized_shape(height: int, width: int, short_side: int) -> Tuple[int, int]:
    """(height, width) with the short side brought down to `short_side`, aspect kept.

    Frames are only ever shrunk at decode time (0 or a larger `short_side` keeps the
    native size); sizes are rounded to even numbers, as pixel formats with chroma
    subsampling require.
    """
    short = min(height, width)
    if short_side <= 0 or short <= short_side:
        return height, width
    scale = short_side / short

    def _even(x: float) -> int:
        return max(2, int(round(x / 2)) * 2)

    if height <= width:
        return short_side, _even(width * scale)
    return _even(height * scale), short_side


def clamp_indices(indices: Indices) -> torch.Tensor:
    """Indices as a LongTensor (T,), negative ones raised to 0."""
    return torch.as_tensor(indices, dtype=torch.long).reshape(-1).clamp(min=0)


def check_device(backend: str, device: str) -> None:
    """A clear error for a decoding device the backend cannot decode on."""
    if device != "cpu" and backend not in DEVICE_BACKENDS.get(device, ()):
        able = ", ".join(DEVICE_BACKENDS.get(device, ())) or "none"
        raise ValueError(f"the {backend} backend decodes on the CPU only, not on {device!r}; backends that do: {able}")


def open_video(
    path: str, backend: str = "pyav", short_side: int = 0, num_threads: int = 1, device: str = "cpu",
    max_frame_pixels: int = MAX_FRAME_PIXELS,
) -> Video:
    """Open `path` (local or any iopath path) with the named backend.

    Args:
        path: the video file.
        backend: "pyav", "decord" or "torchcodec" ("torchvision" is read with PyAV).
        short_side: frames are decoded with their short side shrunk to this (0: native).
        num_threads: decoder threads (0: as many as the decoder likes).
        device: where the frames are decoded: "cpu", or "cuda" (see DEVICE_BACKENDS).
        max_frame_pixels: a video whose header gives larger frames is refused before
            any frame is decoded (0: no limit).
    Raises:
        FileNotFoundError: `path` does not exist.
        DecodeError: the file cannot be opened as a video (by the backend a
            ReadWithAnotherBackend names either; FrameTooLarge: its frames are larger
            than `max_frame_pixels`).
        ImportError: the backend's package (or the libraries it loads) is not installed.
    """
    backend = resolve_backend(backend)
    check_device(backend, device)
    if not g_pathmgr.exists(path):
        raise FileNotFoundError(f"video not found: {path}")
    local_path = g_pathmgr.get_local_path(path)
    options = dict(short_side=short_side, num_threads=num_threads, max_frame_pixels=max_frame_pixels, **_on(device))
    try:
        return _video_class(backend)(local_path, **options)
    except ReadWithAnotherBackend as refusal:
        if path not in _fallbacks_warned:
            _fallbacks_warned.add(path)
            logger.warning("%s; decoding it with %s instead", refusal, refusal.backend)
        check_device(refusal.backend, device)
        # One hand-over only: a refusal by the second backend is a DecodeError like any other.
        return _video_class(refusal.backend)(local_path, **options)


def _video_class(backend: str) -> type:
    module_name, class_name = BACKENDS[backend]
    return getattr(importlib.import_module(module_name, __package__), class_name)


def _on(device: str) -> dict:
    """The `device` argument of a Video class that decodes off the CPU."""
    return {} if device == "cpu" else {"device": device}
