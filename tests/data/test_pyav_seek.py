"""PyAV reads clips far apart in one call by seeking to each, not by decoding the gap."""

import torch
from counting_video import frame_numbers

from slowmask.data.decoders.video import open_video


def test_runs_are_cut_at_keyframes_between_requested_indices(counting_video):
    """The counting video has a keyframe every 16 frames."""
    with open_video(counting_video, "pyav") as video:
        assert list(video._runs([0, 1, 2, 40, 41])) == [[0, 1, 2], [40, 41]]
        # Keyframe 16 lies between 10 and 30, but not far enough before 20 (the
        # reorder margin), nor between 17 and 20.
        assert list(video._runs([10, 30])) == [[10], [30]]
        assert list(video._runs([10, 20])) == [[10, 20]]
        assert list(video._runs([17, 20])) == [[17, 20]]


def test_far_apart_clips_equal_clips_read_one_by_one(counting_video):
    indices = [44, 2, 3, 30, 45, 2, 47, 20]
    with open_video(counting_video, "pyav") as video:
        together = video.get_frames(indices)
        one_by_one = torch.cat([video.get_frames([i]) for i in indices])
    assert torch.equal(together, one_by_one)
    assert frame_numbers(together) == indices


class CountingContainer:
    """Forwards to a PyAV container and counts the frames it decodes."""

    def __init__(self, container) -> None:
        self.container = container
        self.decoded = 0

    def __getattr__(self, name):
        return getattr(self.container, name)

    def decode(self, *args, **kwargs):
        for frame in self.container.decode(*args, **kwargs):
            self.decoded += 1
            yield frame


def test_decodes_only_the_windows(counting_video):
    """Two 3-frame windows 40 frames apart: at most a GOP (16 frames) decoded for each,
    where one pass would decode 46."""
    with open_video(counting_video, "pyav") as video:
        video._container = CountingContainer(video._container)
        video.get_frames([1, 2, 3, 44, 45, 46])
        assert video._container.decoded <= 2 * 16
