import pytest
import torch

from slowmask.data.transforms import EvalTransform, RandomResizedBox, ShortSideJitterBox, TrainTransform

MEAN, STD = [0.45, 0.45, 0.45], [0.225, 0.225, 0.225]


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _ramp_clip(num_frames: int = 4, height: int = 48, width: int = 64) -> torch.Tensor:
    """uint8 (T, H, W, 3): brightness grows to the right; frame t adds 10 * t."""
    ramp = torch.linspace(0, 200, width).expand(height, width)
    frames = torch.stack([ramp + 10 * t for t in range(num_frames)])
    return frames.round().to(torch.uint8)[..., None].expand(-1, -1, -1, 3).contiguous()


def _train_transform(flip: bool = True) -> TrainTransform:
    return TrainTransform(32, RandomResizedBox((0.3, 1.0), (0.75, 1.33)), MEAN, STD, random_flip=flip)


def test_train_output_shape_dtype_and_normalization():
    transform = _train_transform()
    clip = transform(_ramp_clip(), _generator())
    assert clip.shape == (3, 4, 32, 32) and clip.dtype == torch.float32
    white = transform(torch.full((4, 48, 64, 3), 255, dtype=torch.uint8), _generator())
    torch.testing.assert_close(white, torch.full_like(white, (1 - 0.45) / 0.225))


def test_every_frame_gets_the_same_crop_and_flip():
    """Frames differ by a constant brightness offset, so after a shared crop and flip
    they still do, pixel for pixel."""
    for seed in range(8):
        clip = _train_transform()(_ramp_clip(), _generator(seed))
        offsets = clip - clip[:, :1]
        for t in range(4):
            torch.testing.assert_close(offsets[:, t], torch.full_like(offsets[:, t], 10 * t / 255 / 0.225))


def test_train_transform_is_reproducible_and_random():
    frames = _ramp_clip()
    transform = _train_transform()
    assert torch.equal(transform(frames, _generator(1)), transform(frames, _generator(1)))
    assert not torch.equal(transform(frames, _generator(1)), transform(frames, _generator(2)))


def test_flip_happens_only_when_asked():
    def flipped(clip: torch.Tensor) -> bool:
        return bool(clip[0, 0, :, 0].mean() > clip[0, 0, :, -1].mean())

    assert not any(flipped(_train_transform(flip=False)(_ramp_clip(), _generator(s))) for s in range(10))
    assert any(flipped(_train_transform(flip=True)(_ramp_clip(), _generator(s))) for s in range(10))


def test_random_resized_box_respects_area_and_aspect():
    sampler = RandomResizedBox((0.3, 0.6), (0.75, 1.33))
    generator = _generator()
    for _ in range(50):
        top, left, height, width = sampler(90, 120, generator)
        assert 0 <= top <= 90 - height and 0 <= left <= 120 - width
        assert 0.28 <= height * width / (90 * 120) <= 0.62
        assert 0.7 <= width / height <= 1.4


def test_short_side_jitter_box_scales_the_crop():
    sampler = ShortSideJitterBox(min_size=64, max_size=64, crop_size=32)
    top, left, height, width = sampler(128, 160, _generator())
    assert (height, width) == (64, 64)  # short side 128 -> 64 halves it: a 32 crop is 64 input pixels
    assert 0 <= top <= 64 and 0 <= left <= 96


def test_eval_views_go_left_centre_right():
    transform = EvalTransform(short_side=32, crop_size=32, mean=MEAN, std=STD, num_views=3)
    means = [float(transform(_ramp_clip(), None, spatial_index=k).mean()) for k in range(3)]
    assert means[0] < means[1] < means[2]
    centre = EvalTransform(short_side=32, crop_size=32, mean=MEAN, std=STD)
    torch.testing.assert_close(centre(_ramp_clip(), None), transform(_ramp_clip(), None, spatial_index=1))
    with pytest.raises(IndexError, match="spatial_index 3"):
        transform(_ramp_clip(), None, spatial_index=3)
