"""Counting and deadlines for pytorchvideo's decoding.

pytorchvideo's `LabeledVideoDataset` passes over a video it cannot open or decode and
takes the next one, logging at debug level only. The path handler and video wrapper
here make those skips visible (a warning, and the path in the next item's
`meta["skipped"]`, as the Kinetics dataset does) and put a deadline on opening a video
and on decoding a clip (see decoders/timeout.py).
"""

import functools
import logging
import threading
from typing import Any, Dict, List, Optional

from pytorchvideo.data.video import VideoPathHandler

from ..decoders.timeout import DecodeTimeout, call_with_timeout

logger = logging.getLogger(__name__)

# What pytorchvideo's Video.get_clip returns for a clip it could not decode.
NO_CLIP: Dict[str, Any] = {"video": None, "audio": None}


class GuardedVideo:
    """A pytorchvideo Video whose `get_clip` runs within `timeout_s` seconds.

    A clip that fails (pytorchvideo returns no frames) or overruns is recorded in
    `failed` and returned as no clip, so pytorchvideo closes the video and moves on. An
    overrunning decode may still hold the video: `close` then leaves it to that decode,
    which closes it when (if ever) it returns.
    """

    def __init__(self, video: Any, path: str, timeout_s: float, failed: List[str]) -> None:
        self._video = video
        self.path = path
        self.timeout_s = timeout_s
        self.failed = failed
        self._lock = threading.Lock()
        self._running = self._close_when_done = False

    @property
    def name(self) -> Optional[str]:
        return self._video.name

    @property
    def duration(self) -> float:
        return self._video.duration

    def get_clip(self, start_sec: float, end_sec: float) -> Dict[str, Any]:
        self._running = True
        try:
            clip = call_with_timeout(functools.partial(self._decode, start_sec, end_sec), self.timeout_s, self.path)
        except DecodeTimeout as error:
            clip, reason = NO_CLIP, str(error)
        else:
            reason = "" if clip is not None and clip.get("video") is not None else "no frames could be decoded"
        if reason:
            logger.warning("skipping unreadable video %s (%s)", self.path, reason)
            self.failed.append(self.path)
            return NO_CLIP
        return clip

    def _decode(self, start_sec: float, end_sec: float) -> Optional[Dict[str, Any]]:
        try:
            return self._video.get_clip(start_sec, end_sec)
        finally:
            with self._lock:
                self._running = False
                if self._close_when_done:
                    self._video.close()

    def close(self) -> None:
        with self._lock:
            if self._running:
                self._close_when_done = True
                return
        self._video.close()


class RecordingPathHandler(VideoPathHandler):
    """pytorchvideo's path handler, opening within `timeout_s` seconds (0: no limit) and
    recording in `failed` every video that could not be opened or decoded (this
    process's, in order; `take_failed` empties it). A video whose opening overran is
    closed by nobody: one file handle per abandoned open."""

    def __init__(self, timeout_s: float = 0.0) -> None:
        super().__init__()
        self.timeout_s = timeout_s
        self.failed: List[str] = []

    def video_from_path(self, filepath: str, decode_audio: bool = False, decoder: str = "pyav", fps: int = 30):
        opener = functools.partial(
            VideoPathHandler.video_from_path, self, filepath, decode_audio=decode_audio, decoder=decoder, fps=fps
        )
        try:
            video = call_with_timeout(opener, self.timeout_s, filepath)
        except Exception as error:  # pytorchvideo catches it too and takes the next video
            logger.warning("skipping unreadable video %s (%s: %s)", filepath, type(error).__name__, error)
            self.failed.append(filepath)
            raise
        return GuardedVideo(video, filepath, self.timeout_s, self.failed)

    def take_failed(self) -> List[str]:
        """The videos recorded since the last call."""
        failed, self.failed[:] = list(self.failed), []
        return failed
