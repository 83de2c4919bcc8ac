"""The attention part of `tools/benchmark.py --what step`: the attention core alone.

The step row times a whole MaskMViT training step with the SDPA attention against the
same model with the explicit matmul-softmax-matmul attention. This row times only what
differs between the two: the attention cores (`q, k, v -> softmax(q k^T + bias) v`,
forward and backward) of every block, at the shapes one forward pass of the model gives
them. Its ratio is the speedup of the part that SDPA replaces; its share of the plain
step bounds what the step as a whole can gain (a core that takes 5 % of the step can
make the step at most 1.05x faster).
"""

from typing import Callable, List, Tuple

import torch
from torch import nn

from slowmask.models.attention import MultiScaleAttention
from slowmask.utils.timing import Timing, compare

# One recorded call of an attention core: the module, then (q, k, v, q_grid, k_grid).
CoreCall = Tuple[MultiScaleAttention, tuple]


def record_core_calls(model: nn.Module, clips: torch.Tensor, masks: torch.Tensor) -> List[CoreCall]:
    """The inputs every attention core of `model` receives in one forward pass."""
    calls: List[CoreCall] = []
    modules = [m for m in model.modules() if isinstance(m, MultiScaleAttention)]
    for module in modules:
        def recording(*inputs, _module=module, _attend=module._attend_sdpa):
            calls.append((_module, tuple(x.detach() if torch.is_tensor(x) else x for x in inputs)))
            return _attend(*inputs)

        module._attend_sdpa = recording
    try:
        with torch.no_grad():
            model(clips, masks)
    finally:
        for module in modules:
            del module._attend_sdpa  # back to the class's method
    return calls


def _cores(calls: List[CoreCall], sdpa: bool) -> Callable[[], None]:
    """Forward and backward of every recorded core, through SDPA or the plain path."""

    def run() -> None:
        for module, (q, k, v, q_grid, k_grid) in calls:
            q, k, v = (x.clone().requires_grad_() for x in (q, k, v))
            attend = module._attend_sdpa if sdpa else module._attend_plain
            attend(q, k, v, q_grid, k_grid).sum().backward()

    return run


def core_timings(
    model: nn.Module, clips: torch.Tensor, masks: torch.Tensor, warmup: int, repeats: int
) -> Tuple[Timing, Timing, int]:
    """(SDPA cores' timing, plain cores' timing, number of cores) for one step's shapes."""
    calls = record_core_calls(model, clips, masks)
    fast, slow = compare(_cores(calls, sdpa=True), _cores(calls, sdpa=False), warmup, repeats)
    return fast, slow, len(calls)
