"""Building the pretraining target the config names: the TARGET registry and its builder,
the only target code that reads cfg besides the targets' `from_config`."""

from fvcore.common.config import CfgNode
from torch import nn

from slowmask.geometry import TokenGeometry
from slowmask.utils.registry import Registry

TARGET_REGISTRY = Registry("TARGET", "target")
TARGET_REGISTRY.__doc__ = """Pretraining targets, by the name MASK.TARGET gives.

Every entry is an nn.Module class built as `TARGET_REGISTRY.build(name, cfg)`, i.e.
`cls.from_config(cfg)` (no context); called as
`target(clip, grid)` with the normalized clip (B, 3, T, H, W) and the prediction
grid (t, h, w), it returns (B, t*h*w, D) target vectors in (t, h, w) order,
without gradient. `target.dim(patch)` gives D for a prediction token covering
`patch` = (frames, height, width) input pixels (used to size the prediction head).
Two class attributes declare how the pretrainer runs a target (slowmask.methods.
pretrainer): `runs_under_autocast` and `state_in_checkpoint` (its parameters and
buffers saved with the model, e.g. an EMA target encoder); both False when absent.
"""


def target_name(cfg: CfgNode) -> str:
    """MASK.TARGET, or when it is "" the name PySlowFast's MASK.PRED_HOG implies: "hog"
    when True, "pixel" when False."""
    if cfg.MASK.TARGET:
        return cfg.MASK.TARGET
    return "hog" if cfg.MASK.PRED_HOG else "pixel"


def build_target(cfg: CfgNode) -> nn.Module:
    """The target module MASK.TARGET (or MASK.PRED_HOG) names, built from the config."""
    return TARGET_REGISTRY.build(target_name(cfg), cfg, "MASK.TARGET")


def target_dim(cfg: CfgNode) -> int:
    """Length of one token's target vector, to size the prediction head (HOG:
    3 * nbins * (ph / c) * (pw / c) for a ph x pw pixel prediction token and c-pixel cells)."""
    return build_target(cfg).dim(TokenGeometry.from_config(cfg).prediction_stride)
