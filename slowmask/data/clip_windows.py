"""Temporal sampling: which native-rate frame indices make a clip.

A clip is `num_frames` frames, `sampling_rate` frames apart at `target_fps`. On a
video at `fps`, that stride is `sampling_rate * fps / target_fps` native frames and
the clip spans `(num_frames - 1) * stride + 1` native frames (PySlowFast's window).
Samplers differ only in where the window starts; all are called as

    sampler(video_frames, video_fps, generator, clip_index) -> LongTensor (num_frames,)

and clamp indices to [0, video_frames - 1], so a video shorter than the window
repeats its last frame. `num_views` is how many temporal views a video gives (test
time); `clip_index` picks one of them and the other samplers ignore it.
"""

import abc
import math

import torch


class ClipSampler(abc.ABC):
    """Base: the clip geometry; subclasses choose the window start.

    Args:
        num_frames: frames per clip (T).
        sampling_rate: stride between sampled frames, counted at `target_fps`.
        target_fps: the frame rate `sampling_rate` refers to.
    """

    num_views = 1

    def __init__(self, num_frames: int, sampling_rate: int, target_fps: float = 30.0) -> None:
        if num_frames < 1 or sampling_rate < 1 or target_fps <= 0:
            raise ValueError(
                f"need num_frames >= 1, sampling_rate >= 1, target_fps > 0; got "
                f"{num_frames}, {sampling_rate}, {target_fps}"
            )
        self.num_frames = num_frames
        self.sampling_rate = sampling_rate
        self.target_fps = target_fps

    def stride(self, video_fps: float) -> float:
        """Distance between sampled frames, in native frames."""
        return self.sampling_rate * video_fps / self.target_fps

    def span(self, video_fps: float) -> float:
        """Window length in native frames (first to last sampled frame, inclusive)."""
        return (self.num_frames - 1) * self.stride(video_fps) + 1

    @abc.abstractmethod
    def start(self, delta: float, generator: torch.Generator, clip_index: int) -> float:
        """First frame of the window, in [0, delta] (delta = frames to spare)."""

    def __call__(
        self, video_frames: int, video_fps: float, generator: torch.Generator, clip_index: int = 0
    ) -> torch.Tensor:
        """LongTensor (num_frames,) of native frame indices for one clip."""
        delta = max(video_frames - self.span(video_fps), 0.0)
        start = self.start(delta, generator, clip_index)
        offsets = torch.arange(self.num_frames, dtype=torch.float64) * self.stride(video_fps)
        indices = torch.round(start + offsets).long()
        return indices.clamp(0, max(video_frames - 1, 0))


class RandomClipSampler(ClipSampler):
    """Training: a window at a uniformly random integer start."""

    def start(self, delta: float, generator: torch.Generator, clip_index: int) -> float:
        return float(torch.randint(0, math.floor(delta) + 1, (1,), generator=generator))


class CenterClipSampler(ClipSampler):
    """Validation: the window in the middle of the video."""

    def start(self, delta: float, generator: torch.Generator, clip_index: int) -> float:
        return delta / 2


class UniformClipSampler(ClipSampler):
    """Testing: view `clip_index` of `num_views` windows spread over the video.

    As PySlowFast: view k starts at `delta * k / num_views` (so one view starts at 0).
    """

    def __init__(self, num_frames: int, sampling_rate: int, target_fps: float = 30.0, num_views: int = 1) -> None:
        super().__init__(num_frames, sampling_rate, target_fps)
        if num_views < 1:
            raise ValueError(f"num_views must be >= 1, got {num_views}")
        self.num_views = num_views

    def start(self, delta: float, generator: torch.Generator, clip_index: int) -> float:
        if not 0 <= clip_index < self.num_views:
            raise IndexError(f"clip_index {clip_index} outside [0, {self.num_views})")
        return delta * clip_index / self.num_views


class OffsetClipSampler(UniformClipSampler):
    """Testing with PySlowFast's DATA.USE_OFFSET_SAMPLING: the first view starts at the
    first frame and the last view ends at the last one, the others evenly between
    (`k * floor(delta / (num_views - 1))`); a single view is the centre window
    (`floor(delta / 2)`)."""

    def start(self, delta: float, generator: torch.Generator, clip_index: int) -> float:
        super().start(delta, generator, clip_index)  # checks clip_index
        if self.num_views == 1:
            return float(math.floor(delta / 2))
        return float(clip_index * math.floor(delta / (self.num_views - 1)))


class SegmentSampler:
    """Something-Something v2 (PySlowFast's Ssv2): the video is cut into `num_frames`
    equal segments and one frame is taken from each, a random one in training
    (`random`), the middle one otherwise. The clip always spans the whole video, so the
    frame rate and a sampling rate play no part. Called as a ClipSampler:

        sampler(video_frames, video_fps, generator, clip_index) -> LongTensor (num_frames,)

    Segment i covers frames [round(s * i), round(s * (i + 1))] with s = (video_frames - 1)
    / num_frames (Python's round, as PySlowFast's np.round: halves to even).
    """

    num_views = 1

    def __init__(self, num_frames: int, random: bool) -> None:
        if num_frames < 1:
            raise ValueError(f"need num_frames >= 1, got {num_frames}")
        self.num_frames = num_frames
        self.random = random

    def __call__(
        self, video_frames: int, video_fps: float, generator: torch.Generator, clip_index: int = 0
    ) -> torch.Tensor:
        """LongTensor (num_frames,) of frame indices, one per segment."""
        segment = max(video_frames - 1, 0) / self.num_frames
        indices = []
        for i in range(self.num_frames):
            first, last = int(round(segment * i)), int(round(segment * (i + 1)))
            if self.random:
                indices.append(int(torch.randint(first, last + 1, (), generator=generator)))
            else:
                indices.append((first + last) // 2)
        return torch.tensor(indices, dtype=torch.long)
