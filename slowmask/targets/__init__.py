"""Pretraining targets (TARGET registry): what the model regresses for masked tokens.

`build_target(cfg)` builds the target MASK.TARGET names; the targets (hog.py, pixel.py)
take plain arguments. The "teacher" target, which needs a model and a checkpoint, is
registered by its method (slowmask.methods.distillation).
"""

from .build import TARGET_REGISTRY, build_target, target_dim, target_name
from .hog import HOGTarget, hog
from .pixel import PixelTarget, normalize_patches, patchify, unpatchify

__all__ = [
    "HOGTarget",
    "PixelTarget",
    "TARGET_REGISTRY",
    "build_target",
    "hog",
    "normalize_patches",
    "patchify",
    "target_dim",
    "target_name",
    "unpatchify",
]
