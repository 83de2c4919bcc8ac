"""Spatial transforms of a clip: crop box, resize, flip, normalize.

A transform maps uint8 frames (T, H, W, 3) to a normalized float32 clip
(3, T, S, S), S = crop_size, with the same crop and flip for every frame:

    transform(frames, generator, spatial_index) -> clip

Each transform picks a box (top, left, height, width) in the input frames and resizes
it to S x S in one step (for "resize the short side, then crop" that is the same
picture, with one resize of the crop only instead of the whole frame). Random choices
come from the `torch.Generator` passed in, so a clip is reproducible from its seed.
`num_views` is the number of spatial views (test time); `spatial_index` picks one.
`reverse_channels` (PySlowFast's DATA.REVERSE_INPUT_CHANNEL) reverses the channel order
of the finished clip, after normalization, where PySlowFast reverses it.

A training transform built with `normalize=False` stops before the normalization and
returns the uint8 clip (3, T, S, S): a quarter of the bytes through the workers' shared
memory and the copy to the GPU. `ClipNormalizer` then finishes the batch on its device,
with the same float32 operations, so the clip the model, its mask and its HOG or pixel
targets see is the same to the bit.
"""

import abc
import math
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch
import torchvision.transforms.v2.functional as F

# A crop in input pixels: (top, left, height, width).
Box = Tuple[int, int, int, int]
BoxSampler = Callable[[int, int, torch.Generator], Box]
# (T, 3, S, S) clip, generator -> clip: RandAugment (uint8) or random erasing (float).
ClipAugment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def _randint(generator: torch.Generator, high: int) -> int:
    """An integer in [0, high] (inclusive)."""
    return int(torch.randint(0, high + 1, (), generator=generator))


class RandomResizedBox:
    """A box of random area fraction in `scale` and aspect ratio (width / height,
    log-uniform) in `ratio`, as torchvision's RandomResizedCrop and PySlowFast's
    relative jitter; after `attempts` misses, the largest central box whose aspect
    ratio lies in `ratio`."""

    def __init__(
        self, scale: Sequence[float] = (0.08, 1.0), ratio: Sequence[float] = (3 / 4, 4 / 3), attempts: int = 10
    ) -> None:
        if not (0 < scale[0] <= scale[1] <= 1 and 0 < ratio[0] <= ratio[1]):
            raise ValueError(f"need 0 < scale[0] <= scale[1] <= 1 and 0 < ratio[0] <= ratio[1]; got {scale}, {ratio}")
        self.scale = tuple(scale)
        self.log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        self.ratio = tuple(ratio)
        self.attempts = attempts

    def __call__(self, height: int, width: int, generator: torch.Generator) -> Box:
        area = height * width
        for _ in range(self.attempts):
            target_area = area * _uniform(generator, *self.scale)
            aspect = math.exp(_uniform(generator, *self.log_ratio))
            box_w = int(round(math.sqrt(target_area * aspect)))
            box_h = int(round(math.sqrt(target_area / aspect)))
            if 0 < box_w <= width and 0 < box_h <= height:
                return _randint(generator, height - box_h), _randint(generator, width - box_w), box_h, box_w
        aspect = min(max(width / height, self.ratio[0]), self.ratio[1])
        box_w, box_h = min(width, int(round(height * aspect))), min(height, int(round(width / aspect)))
        return (height - box_h) // 2, (width - box_w) // 2, box_h, box_w


class ShortSideJitterBox:
    """PySlowFast's scale jitter as a box: the short side resized to a random size in
    [min_size, max_size] (the inverse of a uniform draw over [1/max, 1/min] when
    `inverse_uniform`), then a random `crop_size` square."""

    def __init__(self, min_size: int, max_size: int, crop_size: int, inverse_uniform: bool = False) -> None:
        if not 0 < min_size <= max_size:
            raise ValueError(f"need 0 < min_size <= max_size, got {min_size}, {max_size}")
        self.min_size, self.max_size = min_size, max_size
        self.crop_size = crop_size
        self.inverse_uniform = inverse_uniform

    def __call__(self, height: int, width: int, generator: torch.Generator) -> Box:
        if self.inverse_uniform:
            size = 1.0 / _uniform(generator, 1.0 / self.max_size, 1.0 / self.min_size)
        else:
            size = _uniform(generator, self.min_size, self.max_size)
        side = min(height, width, max(1, int(round(self.crop_size * min(height, width) / round(size)))))
        return _randint(generator, height - side), _randint(generator, width - side), side, side


def view_box(height: int, width: int, short_side: int, crop_size: int, position: float) -> Box:
    """The `crop_size` square of a frame resized to `short_side`, as a box in the input:
    centred on the short axis, at `position` (0 = left/top, 0.5 = centre, 1 = right/bottom)
    along the long axis."""
    side = min(height, width, max(1, int(round(crop_size * min(height, width) / short_side))))
    along = int(round((max(height, width) - side) * position))
    across = (min(height, width) - side) // 2
    if height > width:
        return along, across, side, side
    return across, along, side, side


def normalization_constants(mean: Sequence[float], std: Sequence[float]) -> Tuple[torch.Tensor, torch.Tensor]:
    """float32 (C,) `scale` and `shift` with (x / 255 - mean) / std = x * scale - shift.

    Always computed on the CPU, so that a clip normalized on another device gets the
    very same constants (and with them the same result, to the bit).
    """
    std_t = torch.tensor(std, dtype=torch.float32)
    mean_t = torch.tensor(mean, dtype=torch.float32)
    return 1.0 / (255.0 * std_t), mean_t / std_t


def to_normalized_float(clip: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 (T, 3, S, S) -> float32 (T, 3, S, S), (clip / 255 - mean) / std per channel.

    The uint8 clip is read once into a new (3, T, S, S) tensor, normalized in place and
    returned as its (T, 3, S, S) view, so that the final (3, T, S, S) clip costs no
    further copy: one allocation instead of four, which matters in the loader's workers.
    """
    frames, channels, height, width = clip.shape
    out = torch.empty((channels, frames, height, width), dtype=torch.float32, device=clip.device)
    out.copy_(clip.transpose(0, 1))
    scale, shift = (c.to(clip.device).view(channels, 1, 1, 1) for c in normalization_constants(mean, std))
    out.mul_(scale).sub_(shift)
    return out.transpose(0, 1)


class ClipNormalizer:
    """The loader's normalization of a batch, run on the batch's device: uint8
    (B, 3, T, H, W) -> float32 (B, 3, T, H, W), (clip / 255 - mean) / std per channel,
    then the channels reversed when `reverse_channels` (after normalization, as in
    ClipTransform). The operations are those of `to_normalized_float`, in the same
    order on the same constants: the result equals the loader's to the bit."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], reverse_channels: bool = False) -> None:
        if len(mean) != len(std):
            raise ValueError(f"mean and std need one value per channel, got {list(mean)} and {list(std)}")
        self.mean, self.std = list(mean), list(std)
        self.reverse_channels = reverse_channels
        self._scale, self._shift = (c.view(1, -1, 1, 1, 1) for c in normalization_constants(mean, std))
        self._on_device: Dict[torch.device, Tuple[torch.Tensor, torch.Tensor]] = {}

    def _constants(self, device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
        # Moved once per device: a copy in every step would be a host-to-device transfer each time.
        if device not in self._on_device:
            self._on_device[device] = (self._scale.to(device), self._shift.to(device))
        return self._on_device[device]

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        if clip.dtype != torch.uint8:
            raise TypeError(
                f"normalizing on the device needs the loader's uint8 clips, got {clip.dtype}: this dataset "
                "normalizes its clips itself; set DATA.NORMALIZE_ON_DEVICE False"
            )
        if clip.dim() != 5 or clip.shape[1] != len(self.mean):
            raise ValueError(f"expected a (B, {len(self.mean)}, T, H, W) clip, got {tuple(clip.shape)}")
        scale, shift = self._constants(clip.device)
        out = clip.to(torch.float32)
        out.mul_(scale).sub_(shift)
        return out.flip(1) if self.reverse_channels else out  # (B, 3, T, H, W): RGB <-> BGR


class ClipTransform(abc.ABC):
    """Base: crop the box chosen by `box`, resize to `crop_size`, flip when `flip`
    says so, [RandAugment the uint8 frames], scale to [0, 1], normalize with `mean` /
    `std` (per channel of the frames as decoded) [and erase boxes] [and reverse the
    channels]; the optional `rand_augment` and `erasing` (see augment.py) act on
    (T, 3, S, S) with the same choice for every frame. With `normalize` False the clip
    is returned as uint8 after the RandAugment, for a ClipNormalizer to finish on the
    device; erasing and reversing act on the normalized clip, so they cannot come here."""

    num_views = 1

    def __init__(
        self,
        crop_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        rand_augment: Optional[ClipAugment] = None,
        erasing: Optional[ClipAugment] = None,
        reverse_channels: bool = False,
        normalize: bool = True,
    ) -> None:
        if not normalize and (erasing is not None or reverse_channels):
            raise ValueError(
                "random erasing and channel reversal act on the normalized clip: with normalize=False "
                "leave them to the device (ClipNormalizer reverses; erasing has no device path)"
            )
        self.crop_size = crop_size
        self.mean = list(mean)
        self.std = list(std)
        self.rand_augment = rand_augment
        self.erasing = erasing
        self.reverse_channels = reverse_channels
        self.normalize = normalize

    @abc.abstractmethod
    def box(self, height: int, width: int, generator: torch.Generator, spatial_index: int) -> Box:
        """The (top, left, height, width) region of the frame this view crops."""

    def flip(self, generator: torch.Generator) -> bool:
        return False

    def __call__(
        self, frames: torch.Tensor, generator: Optional[torch.Generator], spatial_index: int = 0
    ) -> torch.Tensor:
        """uint8 (T, H, W, 3) -> float32 (3, T, crop_size, crop_size), normalized (uint8,
        not normalized, when built with normalize=False). (`generator` may be None for a
        transform without random choices.)"""
        _, height, width, _ = frames.shape
        top, left, box_h, box_w = self.box(height, width, generator, spatial_index)
        clip = frames.permute(0, 3, 1, 2)  # (T, 3, H, W)
        clip = F.resized_crop(clip, top, left, box_h, box_w, [self.crop_size, self.crop_size], antialias=True)
        if self.flip(generator):
            clip = F.horizontal_flip(clip)
        if self.rand_augment is not None:
            clip = self.rand_augment(clip, generator)
        if not self.normalize:
            return clip.permute(1, 0, 2, 3).contiguous()  # uint8 (3, T, S, S)
        clip = to_normalized_float(clip, self.mean, self.std)
        if self.erasing is not None:
            clip = self.erasing(clip, generator)
        if self.reverse_channels:
            clip = clip.flip(1)  # (T, 3, S, S): RGB <-> BGR
        return clip.permute(1, 0, 2, 3).contiguous()  # (3, T, S, S); no copy unless erased or reversed


class TrainTransform(ClipTransform):
    """Training: a box from `box_sampler` (RandomResizedBox or ShortSideJitterBox), a
    horizontal flip with probability 0.5 when `random_flip`, and the optional
    `rand_augment` and `erasing` of fine-tuning; uint8 out when not `normalize`."""

    def __init__(
        self,
        crop_size: int,
        box_sampler: BoxSampler,
        mean: Sequence[float],
        std: Sequence[float],
        random_flip: bool = True,
        rand_augment: Optional[ClipAugment] = None,
        erasing: Optional[ClipAugment] = None,
        reverse_channels: bool = False,
        normalize: bool = True,
    ) -> None:
        super().__init__(crop_size, mean, std, rand_augment, erasing, reverse_channels, normalize)
        self.box_sampler = box_sampler
        self.random_flip = random_flip

    def box(self, height: int, width: int, generator: torch.Generator, spatial_index: int) -> Box:
        return self.box_sampler(height, width, generator)

    def flip(self, generator: torch.Generator) -> bool:
        return self.random_flip and float(torch.rand((), generator=generator)) < 0.5


class EvalTransform(ClipTransform):
    """Validation / test: short side resized to `short_side`, then the `crop_size` square
    at view `spatial_index` of `num_views` spread along the long side (one view: the
    centre; three: left/top, centre, right/bottom, as PySlowFast)."""

    def __init__(
        self,
        short_side: int,
        crop_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        num_views: int = 1,
        reverse_channels: bool = False,
    ) -> None:
        super().__init__(crop_size, mean, std, reverse_channels=reverse_channels)
        if num_views < 1:
            raise ValueError(f"num_views must be >= 1, got {num_views}")
        self.short_side = short_side
        self.num_views = num_views

    def box(self, height: int, width: int, generator: Optional[torch.Generator], spatial_index: int) -> Box:
        if not 0 <= spatial_index < self.num_views:
            raise IndexError(f"spatial_index {spatial_index} outside [0, {self.num_views})")
        position = 0.5 if self.num_views == 1 else spatial_index / (self.num_views - 1)
        return view_box(height, width, self.short_side, self.crop_size, position)
