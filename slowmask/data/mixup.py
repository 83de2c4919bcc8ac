"""Mixup (Zhang et al. 2018) and CutMix (Yun et al. 2019) on a batch of clips, with label
smoothing: torchvision.transforms.v2's MixUp / CutMix, chosen per batch as timm and
PySlowFast do (MIXUP.PROB, MIXUP.SWITCH_PROB). A CutMix box is the same in every frame.
"""

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision import tv_tensors
from torchvision.transforms import v2


class MixupCutmix:
    """(clip (B, 3, T, H, W), labels (B,) int64) -> (clip, soft targets (B, K) float32).

    With probability `prob` the batch is mixed: CutMix with probability `switch_prob`
    (when both are on), else Mixup; otherwise the targets are one-hot. The targets are
    then smoothed: (1 - label_smoothing) * target + label_smoothing / K, so each row sums
    to 1. An alpha of 0 switches that method off. Random choices use torch's global
    generator (this runs in the training process, seeded by RNG_SEED).
    """

    def __init__(
        self,
        num_classes: int,
        mixup_alpha: float = 0.8,
        cutmix_alpha: float = 1.0,
        prob: float = 1.0,
        switch_prob: float = 0.5,
        label_smoothing: float = 0.1,
    ) -> None:
        if mixup_alpha <= 0 and cutmix_alpha <= 0:
            raise ValueError("mixup_alpha or cutmix_alpha must be positive (MIXUP.ALPHA, MIXUP.CUTMIX_ALPHA)")
        if not (0.0 <= prob <= 1.0 and 0.0 <= switch_prob <= 1.0 and 0.0 <= label_smoothing < 1.0):
            raise ValueError(
                f"need prob and switch_prob in [0, 1] and label_smoothing in [0, 1); got "
                f"{prob}, {switch_prob}, {label_smoothing}"
            )
        self.num_classes = num_classes
        self.mixup = v2.MixUp(alpha=mixup_alpha, num_classes=num_classes) if mixup_alpha > 0 else None
        self.cutmix = v2.CutMix(alpha=cutmix_alpha, num_classes=num_classes) if cutmix_alpha > 0 else None
        self.prob = prob
        self.switch_prob = switch_prob
        self.label_smoothing = label_smoothing

    def _method(self) -> Optional[v2.Transform]:
        if float(torch.rand(())) >= self.prob:
            return None
        if self.mixup is None or (self.cutmix is not None and float(torch.rand(())) < self.switch_prob):
            return self.cutmix
        return self.mixup

    def __call__(self, clip: Tensor, labels: Tensor) -> Tuple[Tensor, Tensor]:
        method = self._method()
        if method is None or clip.shape[0] < 2:
            target = F.one_hot(labels, self.num_classes).float()
        else:
            # As a Video (..., H, W), every leading dimension (channels, time) shares the box.
            mixed, target = method(tv_tensors.Video(clip), labels)
            clip, target = mixed.as_subclass(Tensor), target.float()
        smoothing = self.label_smoothing
        return clip, target * (1.0 - smoothing) + smoothing / self.num_classes
