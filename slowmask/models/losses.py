"""Losses, by the name MODEL.LOSS_FUNC gives: pretraining (MSE) and classification."""

from typing import Callable

import torch.nn.functional as F
from torch import Tensor

from slowmask.utils.registry import Registry

LOSS_REGISTRY = Registry("LOSS", "loss")
LOSS_REGISTRY.__doc__ = """Losses, by the name MODEL.LOSS_FUNC gives. A loss has no settings, so
every entry is the loss function itself, called as `loss(pred, target)` -> scalar; for pretraining with (N_masked, C) rows of predictions and targets, for
classification with (B, K) logits and (B,) class indices or (B, K) class probabilities.

The one registry not built with `Registry.build` (`from_config(cfg)`): there is nothing in
the config to build a loss from, and a plain function is what a notebook or a method
passes around; `build_loss(name)` fetches it."""


@LOSS_REGISTRY.register()
def mse(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared error over the given (masked) rows and all their channels."""
    return F.mse_loss(pred, target)


@LOSS_REGISTRY.register()
def multi_mse(pred: Tensor, target: Tensor) -> Tensor:
    """PySlowFast's name for MaskFeat's loss: the same MSE (summed over prediction
    depths by the pretrainer, as PySlowFast's MultipleMSELoss does)."""
    return mse(pred, target)


@LOSS_REGISTRY.register()
def l1(pred: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error over the given (masked) rows and all their channels: SimMIM's
    loss on raw pixels (Xie et al., 2022, Sec. 3.4)."""
    return F.l1_loss(pred, target)


@LOSS_REGISTRY.register()
def smooth_l1(pred: Tensor, target: Tensor) -> Tensor:
    """Mean smooth L1 (Huber, beta 1) over the given rows and all their channels: MVD's
    loss on teacher features (its released recipes' --distill_loss_func SmoothL1)."""
    return F.smooth_l1_loss(pred, target, beta=1.0)


@LOSS_REGISTRY.register()
def cosine(pred: Tensor, target: Tensor) -> Tensor:
    """Mean over the (N, C) rows of 1 - cos(pred_row, target_row): a feature-alignment loss
    blind to each row's scale (UMT aligns l2-normalized student and teacher tokens)."""
    return (1.0 - F.cosine_similarity(pred, target, dim=-1)).mean()


@LOSS_REGISTRY.register()
def cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """Mean cross entropy of (B, K) logits against (B,) labels or (B, K) soft targets
    (mixup / cutmix / label smoothing)."""
    return F.cross_entropy(logits.float(), target)


@LOSS_REGISTRY.register()
def soft_cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """PySlowFast's name for the cross entropy with soft targets (the same function)."""
    return cross_entropy(logits, target)


def build_loss(name: str) -> Callable[[Tensor, Tensor], Tensor]:
    """The registered loss `name` (MODEL.LOSS_FUNC); a clear error names the registered ones."""
    return LOSS_REGISTRY.get(name, "MODEL.LOSS_FUNC")
