import pytest
import torch

from slowmask.data.clip_windows import CenterClipSampler, RandomClipSampler, UniformClipSampler


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_stride_follows_the_native_frame_rate():
    sampler = CenterClipSampler(num_frames=4, sampling_rate=2, target_fps=30)
    assert sampler(300, 30.0, _generator()).diff().tolist() == [2, 2, 2]
    assert sampler(300, 60.0, _generator()).diff().tolist() == [4, 4, 4]
    assert sampler.span(60.0) == 13


def test_random_windows_stay_inside_and_vary():
    sampler = RandomClipSampler(num_frames=8, sampling_rate=4)
    generator = _generator()
    starts = set()
    for _ in range(50):
        indices = sampler(100, 30.0, generator)
        assert indices.shape == (8,) and indices.dtype == torch.long
        assert indices.min() >= 0 and indices.max() <= 99
        assert indices.diff().eq(4).all()
        starts.add(int(indices[0]))
    assert len(starts) > 10


def test_random_windows_are_reproducible_from_the_generator():
    sampler = RandomClipSampler(num_frames=8, sampling_rate=4)
    first = [sampler(100, 30.0, g) for g in [_generator(3)] * 5]
    second = [sampler(100, 30.0, g) for g in [_generator(3)] * 5]
    assert all(torch.equal(a, b) for a, b in zip(first, second))


def test_center_window_is_centred():
    indices = CenterClipSampler(num_frames=4, sampling_rate=2)(21, 30.0, _generator())
    assert indices.tolist() == [7, 9, 11, 13]


def test_uniform_views_spread_as_pyslowfast():
    sampler = UniformClipSampler(num_frames=4, sampling_rate=2, num_views=3)
    starts = [int(sampler(67, 30.0, _generator(), clip_index=k)[0]) for k in range(3)]
    assert starts == [0, 20, 40]  # delta = 67 - 7 = 60, start = delta * k / 3
    with pytest.raises(IndexError, match="clip_index 3"):
        sampler(67, 30.0, _generator(), clip_index=3)


def test_short_video_repeats_its_last_frame():
    indices = RandomClipSampler(num_frames=6, sampling_rate=4)(10, 30.0, _generator())
    assert indices.tolist() == [0, 4, 8, 9, 9, 9]


def test_invalid_geometry_is_refused():
    with pytest.raises(ValueError, match="sampling_rate"):
        RandomClipSampler(num_frames=4, sampling_rate=0)
