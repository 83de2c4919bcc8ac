"""Video decoding: the `Video` interface (video.py: uint8 frames by index) and
`open_video`, which opens a file with the backend chosen by name; the backends, each in
its own module imported only when chosen (pyav_video.py, decord_video.py,
torchcodec_video.py); and the bound on how long a decode may take (timeout.py)."""

from .timeout import DecodeTimeout, call_with_timeout
from .video import DecodeError, Video, open_video

__all__ = ["DecodeError", "DecodeTimeout", "Video", "call_with_timeout", "open_video"]
