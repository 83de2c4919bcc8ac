"""Fine-tuning augmentations of one clip, the same for every frame: RandAugment (Cubuk et
al. 2020) and random erasing (Zhong et al. 2020), from torchvision.transforms.v2.

Both are called as `augment(clip (T, 3, H, W), generator) -> clip`: torchvision draws
from torch's global generator, so each call runs inside `torch.random.fork_rng`, seeded
from the item's generator; the clip stays reproducible from (seed, epoch, index) and the
global state is untouched. A (T, 3, H, W) tensor is a batch of frames to torchvision,
which applies one choice of operations (and one erased box) to all of them.
"""

import logging
import re
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import torch
from torch import Tensor
from torchvision.transforms import v2

# timm's magnitude scale: m in [0, MAX_MAGNITUDE]; torchvision indexes its magnitude bins,
# so BINS_PER_UNIT bins per unit of m keep a fractional magnitude (mstd noise).
MAX_MAGNITUDE = 10.0
BINS_PER_UNIT = 10
# timm's default number of operations per image when the string gives no n.
DEFAULT_NUM_OPS = 2
# AUG.INTERPOLATION -> mode of the geometric operations. torchvision's affine ops on tensors
# have nearest and bilinear only; the recipes' "bicubic" (PIL, in timm) becomes bilinear.
TENSOR_INTERPOLATION = {
    "nearest": v2.InterpolationMode.NEAREST,
    "bilinear": v2.InterpolationMode.BILINEAR,
    "bicubic": v2.InterpolationMode.BILINEAR,
}

logger = logging.getLogger(__name__)


@contextmanager
def seeded_from(generator: torch.Generator) -> Iterator[None]:
    """Run a block on torch's global CPU generator, seeded from `generator`, then restore it."""
    seed = int(torch.randint(0, 2**62, (), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@dataclass(frozen=True)
class RandAugmentPolicy:
    """timm's "rand-m{magnitude}-n{num_ops}-mstd{magnitude_std}-inc1" string, parsed."""

    magnitude: float
    num_ops: int = DEFAULT_NUM_OPS
    magnitude_std: float = 0.0


def parse_rand_augment(spec: str) -> RandAugmentPolicy:
    """Parse AUG.AA_TYPE, e.g. "rand-m7-n4-mstd0.5-inc1".

    Fields: m (magnitude, 0-10), n (operations per clip, default 2), mstd (standard
    deviation of the magnitude noise), inc (must be 1: torchvision's operations grow
    stronger with the magnitude, timm's "increasing" set). Anything else is an error.
    """
    parts = spec.split("-")
    if parts[0] != "rand":
        raise ValueError(f"AUG.AA_TYPE {spec!r}: only RandAugment strings 'rand-m<M>[-n<N>][-mstd<S>]-inc1' are supported")
    fields: Dict[str, str] = {}
    for part in parts[1:]:
        match = re.fullmatch(r"(mstd|inc|m|n)(\d+(?:\.\d+)?)", part)
        if match is None:
            raise ValueError(f"AUG.AA_TYPE {spec!r}: unknown field {part!r}; known: m, n, mstd, inc")
        fields[match.group(1)] = match.group(2)
    if "m" not in fields:
        raise ValueError(f"AUG.AA_TYPE {spec!r} gives no magnitude (m<M>)")
    if fields.get("inc") != "1":
        raise ValueError(
            f"AUG.AA_TYPE {spec!r}: torchvision's RandAugment has timm's increasing-severity "
            "operations only; add -inc1"
        )
    return RandAugmentPolicy(float(fields["m"]), int(float(fields.get("n", DEFAULT_NUM_OPS))), float(fields.get("mstd", 0)))


class ClipRandAugment:
    """RandAugment of a uint8 clip (T, 3, H, W): `num_ops` random operations at a magnitude
    drawn per clip from N(magnitude, magnitude_std), clamped to [0, 10]."""

    def __init__(
        self,
        policy: RandAugmentPolicy,
        interpolation: str = "bicubic",
        fill: Optional[Sequence[float]] = None,
    ) -> None:
        if interpolation not in TENSOR_INTERPOLATION:
            raise ValueError(f"AUG.INTERPOLATION {interpolation!r}; supported: {', '.join(TENSOR_INTERPOLATION)}")
        if interpolation == "bicubic":
            logger.info("RandAugment: bicubic interpolation is applied as bilinear (torchvision's tensor ops)")
        self.policy = policy
        self.interpolation = TENSOR_INTERPOLATION[interpolation]
        self.fill = list(fill) if fill is not None else None

    def __call__(self, clip: Tensor, generator: torch.Generator) -> Tensor:
        magnitude = self.policy.magnitude
        if self.policy.magnitude_std > 0:
            magnitude += self.policy.magnitude_std * float(torch.randn((), generator=generator))
        magnitude = min(max(magnitude, 0.0), MAX_MAGNITUDE)
        augment = v2.RandAugment(
            num_ops=self.policy.num_ops,
            magnitude=round(magnitude * BINS_PER_UNIT),
            num_magnitude_bins=int(MAX_MAGNITUDE * BINS_PER_UNIT) + 1,
            interpolation=self.interpolation,
            fill=self.fill,
        )
        with seeded_from(generator):
            return augment(clip)


def _pixel_noise(channels: int) -> str:
    return "random"


def _channel_noise(channels: int) -> List[float]:
    return torch.randn(channels).tolist()


def _zeros(channels: int) -> float:
    return 0.0


# AUG.RE_MODE -> the erased value: per-pixel normal noise, one normal value per channel, 0.
ERASE_VALUES: Dict[str, Callable[[int], object]] = {"pixel": _pixel_noise, "rand": _channel_noise, "const": _zeros}


class ClipErasing:
    """Random erasing of a normalized float clip (T, 3, H, W): with probability `prob`,
    1 to `max_count` boxes (area fraction in `scale` / count, aspect in `ratio`), the same
    boxes in every frame, filled as `mode` says (see ERASE_VALUES)."""

    def __init__(
        self,
        prob: float,
        mode: str = "pixel",
        max_count: int = 1,
        scale: Sequence[float] = (0.02, 1 / 3),
        ratio: Sequence[float] = (0.3, 1 / 0.3),
    ) -> None:
        if mode not in ERASE_VALUES:
            raise ValueError(f"AUG.RE_MODE {mode!r}; supported: {', '.join(map(repr, ERASE_VALUES))}")
        if not 0.0 <= prob <= 1.0 or max_count < 1:
            raise ValueError(f"need prob in [0, 1] and max_count >= 1, got {prob}, {max_count}")
        self.prob, self.mode, self.max_count = prob, mode, max_count
        self.scale, self.ratio = tuple(scale), tuple(ratio)

    def __call__(self, clip: Tensor, generator: torch.Generator) -> Tensor:
        if float(torch.rand((), generator=generator)) >= self.prob:
            return clip
        count = int(torch.randint(1, self.max_count + 1, (), generator=generator))
        scale = (self.scale[0] / count, self.scale[1] / count)
        with seeded_from(generator):
            for _ in range(count):
                value = ERASE_VALUES[self.mode](clip.shape[-3])
                clip = v2.RandomErasing(p=1.0, scale=scale, ratio=self.ratio, value=value)(clip)
        return clip
