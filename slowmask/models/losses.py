"""Pretraining losses, by the name MODEL.LOSS_FUNC gives."""

from typing import Callable

import torch.nn.functional as F
from fvcore.common.registry import Registry
from torch import Tensor

LOSS_REGISTRY = Registry("LOSS")
LOSS_REGISTRY.__doc__ = """Pretraining losses: a registered function is called as
`loss(pred, target)` with (N_masked, C) rows of predictions and targets, -> scalar."""


@LOSS_REGISTRY.register()
def mse(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared error over the given (masked) rows and all their channels."""
    return F.mse_loss(pred, target)


@LOSS_REGISTRY.register()
def multi_mse(pred: Tensor, target: Tensor) -> Tensor:
    """PySlowFast's name for MaskFeat's loss: the same MSE (summed over prediction
    depths by the pretrainer, as PySlowFast's MultipleMSELoss does)."""
    return mse(pred, target)


def build_loss(name: str) -> Callable[[Tensor, Tensor], Tensor]:
    """The registered loss `name`; a clear error names the known ones."""
    if name not in LOSS_REGISTRY:
        known = ", ".join(sorted(k for k, _ in LOSS_REGISTRY))
        raise ValueError(f"MODEL.LOSS_FUNC {name!r} is not a pretraining loss; known: {known}")
    return LOSS_REGISTRY.get(name)
