"""Exponential moving averages of a module's weights, the one rule both users share:
V-JEPA's target encoder (an average of the context encoder, momentum near 1) and model
EMA in fine-tuning (an average of the whole classifier, MODEL.EMA).

After each optimizer update, every floating parameter of the average moves towards the
source's: average = momentum * average + (1 - momentum) * source. Buffers are copied
as they are (a ViT has none that learn; an average of a running statistic would lag).
"""

from typing import List, Tuple

import torch
from torch import Tensor, nn


class MomentumSchedule:
    """The momentum at optimizer update `step` (0-based): linear from `start` to `end`
    over `total_steps` updates, then `end` (V-JEPA: 0.998 -> 1.0 over the run; V-JEPA 2:
    0.99925 throughout, start == end)."""

    def __init__(self, start: float, end: float, total_steps: int) -> None:
        for name, value in (("start", start), ("end", end)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"the EMA momentum {name} must be in [0, 1], got {value}")
        if total_steps < 1:
            raise ValueError(f"the EMA momentum schedule needs at least 1 update, got {total_steps}")
        self.start, self.end, self.total_steps = start, end, total_steps

    def __call__(self, step: int) -> float:
        progress = min(max(step, 0) / self.total_steps, 1.0)
        return self.start + (self.end - self.start) * progress


def _paired(average: nn.Module, source: nn.Module, kind: str) -> Tuple[List[Tensor], List[Tensor]]:
    """The two modules' parameters (or buffers), paired by name; a name in one only is an error."""
    named = lambda module: dict(module.named_parameters() if kind == "parameters" else module.named_buffers())
    mine, theirs = named(average), named(source)
    if mine.keys() != theirs.keys():
        differ = sorted(mine.keys() ^ theirs.keys())
        raise ValueError(f"the EMA copy and its source hold different {kind}: {differ[:5]}")
    return [mine[name] for name in mine], [theirs[name] for name in mine]


@torch.no_grad()
def ema_update_(average: nn.Module, source: nn.Module, momentum: float) -> None:
    """Moves `average`'s floating parameters to momentum * average + (1 - momentum) *
    source, in place, and copies the buffers. Both modules have the same names (the
    average is a deep copy of the source); a sharded source updates its local shards. An
    average kept on another device (model EMA on the CPU) gets the source's values copied there."""
    averaged, sources = _paired(average, source, "parameters")
    floating = [(a, s) for a, s in zip(averaged, sources) if a.is_floating_point()]
    if floating:
        torch._foreach_lerp_([a for a, _ in floating], [s.detach().to(a.device) for a, s in floating], 1.0 - momentum)
    for mine, theirs in zip(*_paired(average, source, "buffers")):
        mine.copy_(theirs)
