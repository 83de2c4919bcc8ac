"""A decode that never returns is abandoned after its deadline and counted like a bad file."""

import functools
import os
import pickle
import threading
import time

import pytest
import torch

from slowmask.data import DecodeTimeout, Kinetics, call_with_timeout, open_video, read_video_list
from slowmask.data.decoders.video import Video
from slowmask.data.clip_windows import RandomClipSampler
from slowmask.data.transforms import RandomResizedBox, TrainTransform

MEAN, STD = [0.45] * 3, [0.225] * 3
TIMEOUT_S = 0.5


class HangingVideo(Video):
    """A video whose get_frames waits until `release` is set (never, in the test)."""

    def __init__(self, release: threading.Event) -> None:
        self.release = release
        self.closed = False

    fps = property(lambda self: 30.0)
    num_frames = property(lambda self: 48)

    def get_frames(self, indices) -> torch.Tensor:
        self.release.wait()
        return torch.zeros(len(indices), 8, 8, 3, dtype=torch.uint8)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def release():
    """Set at teardown, so the abandoned thread ends and the test leaves nothing behind."""
    event = threading.Event()
    yield event
    event.set()


def test_a_call_within_its_deadline_returns_its_value_or_raises_its_error():
    assert call_with_timeout(lambda: 42, TIMEOUT_S, "x") == 42
    assert call_with_timeout(lambda: 43, 0, "x") == 43

    def fails():
        raise ValueError("broken")

    with pytest.raises(ValueError, match="broken"):
        call_with_timeout(fails, TIMEOUT_S, "x")


def test_a_call_past_its_deadline_is_abandoned_and_the_next_one_runs(release):
    start = time.perf_counter()
    with pytest.raises(DecodeTimeout, match=r"decoding stuck.mp4 took longer than 0.5 s"):
        call_with_timeout(release.wait, TIMEOUT_S, "stuck.mp4")
    assert TIMEOUT_S <= time.perf_counter() - start < TIMEOUT_S + 1.0
    assert call_with_timeout(lambda: "fresh thread", TIMEOUT_S, "x") == "fresh thread"
    stuck = [t for t in threading.enumerate() if t.name == "slowmask-decode" and t.daemon]
    assert len(stuck) >= 2  # the abandoned one (a daemon) and its replacement


def test_a_hanging_video_is_abandoned_and_its_item_comes_from_another_video(demo_data_dir, release):
    good = read_video_list(os.path.join(demo_data_dir, "train.csv"))[:3]
    hung_path = "/data/hangs_forever.mp4"
    opened = []

    def opener(path: str) -> Video:
        video = HangingVideo(release) if path == hung_path else open_video(path, short_side=48)
        opened.append(video)
        return video

    transform = TrainTransform(32, RandomResizedBox((0.3, 1.0), (0.75, 1.33)), MEAN, STD)
    dataset = Kinetics(
        [(hung_path, 0)] + good, RandomClipSampler(4, 4), transform, open_video=opener, decode_timeout=TIMEOUT_S
    )
    start = time.perf_counter()
    item = dataset[0]
    assert TIMEOUT_S <= time.perf_counter() - start < TIMEOUT_S + 2.0
    assert item["meta"]["skipped"] == [hung_path] and dataset.skipped == [hung_path]
    assert item["meta"]["path"] in [path for path, _ in good] and item["clip"].shape == (3, 4, 32, 32)
    release.set()  # the abandoned decode returns at last and closes its video
    deadline = time.perf_counter() + 5
    while not opened[0].closed and time.perf_counter() < deadline:
        time.sleep(0.01)
    assert opened[0].closed


def test_items_are_the_same_with_and_without_a_deadline(demo_data_dir):
    videos = read_video_list(os.path.join(demo_data_dir, "train.csv"))[:4]
    transform = TrainTransform(32, RandomResizedBox((0.3, 1.0), (0.75, 1.33)), MEAN, STD)
    opener = functools.partial(open_video, short_side=48)
    timed, untimed = (
        Kinetics(videos, RandomClipSampler(4, 4), transform, open_video=opener, decode_timeout=t) for t in (30.0, 0)
    )
    for index in (0, 3):
        assert torch.equal(timed[index]["clip"], untimed[index]["clip"])


def test_a_loader_worker_starts_its_own_decode_thread(demo_data_dir):
    call_with_timeout(lambda: None, TIMEOUT_S, "x")  # the parent has its helper thread before forking
    videos = read_video_list(os.path.join(demo_data_dir, "train.csv"))[:2]
    transform = TrainTransform(32, RandomResizedBox((0.3, 1.0), (0.75, 1.33)), MEAN, STD)
    dataset = Kinetics(
        videos, RandomClipSampler(4, 4), transform, open_video=functools.partial(open_video, short_side=48),
        decode_timeout=10.0,
    )
    assert dataset[0]["meta"]["skipped"] == []
    pickle.loads(pickle.dumps(dataset))  # spawned workers receive it pickled: no thread is stored on it
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=1, collate_fn=list, timeout=20)
    items = next(iter(loader))
    assert [item["meta"]["skipped"] for item in items] == [[], []]


def test_a_negative_deadline_is_refused(demo_data_dir):
    transform = TrainTransform(32, RandomResizedBox((0.3, 1.0), (0.75, 1.33)), MEAN, STD)
    with pytest.raises(ValueError, match="decode_timeout must be >= 0"):
        Kinetics([("a.mp4", 0)], RandomClipSampler(4, 4), transform, decode_timeout=-1)


class HangingClipVideo:
    """A pytorchvideo-style video whose get_clip waits until `release` is set."""

    name, duration = "hangs.mp4", 2.0

    def __init__(self, release: threading.Event) -> None:
        self.release = release
        self.closed = False

    def get_clip(self, start_sec, end_sec):
        self.release.wait()
        return {"video": torch.zeros(3, 2, 4, 4), "audio": None}

    def close(self) -> None:
        self.closed = True


def test_a_hanging_pytorchvideo_clip_is_abandoned_and_closed_by_its_decode(release):
    from slowmask.data.datasets.pytorchvideo_guard import NO_CLIP, GuardedVideo

    failed = []
    inner = HangingClipVideo(release)
    video = GuardedVideo(inner, "/data/hangs.mp4", TIMEOUT_S, failed)
    assert video.get_clip(0.0, 1.0) is NO_CLIP and failed == ["/data/hangs.mp4"]
    video.close()
    assert not inner.closed  # the abandoned decode still holds it
    release.set()
    deadline = time.perf_counter() + 5
    while not inner.closed and time.perf_counter() < deadline:
        time.sleep(0.01)
    assert inner.closed
