"""Pretraining targets (TARGET registry): what the model regresses for masked tokens."""

from fvcore.common.config import CfgNode
from torch import nn

from slowmask.geometry import TokenGeometry

from .hog import HOGTarget, hog
from .pixel import PixelTarget, normalize_patches, patchify, unpatchify

from .registry import TARGET_REGISTRY


def target_name(cfg: CfgNode) -> str:
    """MASK.TARGET, or when it is "" the name PySlowFast's MASK.PRED_HOG implies: "hog"
    when True, "pixel" when False."""
    if cfg.MASK.TARGET:
        return cfg.MASK.TARGET
    return "hog" if cfg.MASK.PRED_HOG else "pixel"


def build_target(cfg: CfgNode) -> nn.Module:
    """The target module MASK.TARGET (or MASK.PRED_HOG) names, built from the config."""
    name = target_name(cfg)
    if name not in TARGET_REGISTRY:
        raise ValueError(f"MASK.TARGET {name!r} is not a registered target; registered: {_registered()}")
    return TARGET_REGISTRY.get(name).from_config(cfg)


def target_dim(cfg: CfgNode) -> int:
    """Length of one token's target vector, to size the prediction head (HOG:
    3 * nbins * (ph / 8) * (pw / 8) for a ph x pw pixel prediction token)."""
    return build_target(cfg).dim(TokenGeometry.from_config(cfg).prediction_stride)


def _registered() -> str:
    return ", ".join(repr(name) for name, _ in sorted(TARGET_REGISTRY))


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
