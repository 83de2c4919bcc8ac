"""One optimization step: forward under autocast, backward (scaled for fp16),
gradient clipping, optimizer update. Everything a step needs is decided once, at
construction, so the loop itself carries no flags."""

import math
from contextlib import nullcontext
from typing import Any, Callable, Dict, Optional, Tuple

import torch
from torch import nn

# (model, batch on device) -> (loss, extra metrics). Pretraining and classification differ here only.
Objective = Callable[[nn.Module, Dict[str, Any]], Tuple[torch.Tensor, Dict[str, float]]]


def masked_prediction_objective(model: nn.Module, batch: Dict[str, Any]):
    """Masked pretraining: the model predicts the targets of the masked tokens."""
    out = model(batch["clip"], batch["mask"])
    # One prediction tensor, or a list of them when the model predicts at several depths.
    preds = out["pred"] if isinstance(out["pred"], list) else [out["pred"]]
    return out["loss"], {"masked_tokens": float(sum(p.shape[0] for p in preds))}


def check_labels(labels: torch.Tensor, num_classes: int) -> None:
    """Clear error for a label outside [0, num_classes) (the CSV and MODEL.NUM_CLASSES disagree)."""
    if labels.numel() == 0:
        return
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= num_classes:
        raise ValueError(
            f"a label ({high if high >= num_classes else low}) lies outside [0, MODEL.NUM_CLASSES = "
            f"{num_classes}): the dataset's labels and the classifier's head disagree"
        )


# (clip (B, 3, T, H, W), labels (B,)) -> (clip, soft targets (B, K)): mixup / cutmix.
BatchMixer = Callable[[torch.Tensor, torch.Tensor], Tuple[torch.Tensor, torch.Tensor]]


class ClassificationObjective:
    """Supervised training: `loss(model(clip), target)`, the target being the labels or,
    with a `mixer` (mixup / cutmix / label smoothing), the mixed soft targets."""

    def __init__(
        self,
        loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        num_classes: int,
        mixer: Optional[BatchMixer] = None,
    ) -> None:
        self.loss = loss
        self.num_classes = num_classes
        self.mixer = mixer

    def __call__(self, model: nn.Module, batch: Dict[str, Any]) -> Tuple[torch.Tensor, Dict[str, float]]:
        clip, labels = batch["clip"], batch["label"]
        check_labels(labels, self.num_classes)
        target = labels
        if self.mixer is not None:
            clip, target = self.mixer(clip, labels)
        logits = model(clip)
        top1_err = 100.0 * float((logits.argmax(dim=1) != labels).float().mean())
        return self.loss(logits, target), {"top1_err": top1_err}


def to_device(batch: Dict[str, Any], device: torch.device) -> Dict[str, Any]:
    """Move the batch's tensors to `device` (non-blocking from pinned memory)."""
    return {
        key: value.to(device, non_blocking=True) if torch.is_tensor(value) else value
        for key, value in batch.items()
    }


class TrainStep:
    """Runs one training step on a batch and returns its metrics."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        objective: Objective,
        device: torch.device,
        clip_grad_l2norm: Optional[float] = None,
        clip_grad_val: Optional[float] = None,
        autocast_dtype: Optional[torch.dtype] = None,
        scaler: Optional[torch.amp.GradScaler] = None,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.objective = objective
        self.device = device
        self.clip_grad_l2norm = clip_grad_l2norm
        self.clip_grad_val = clip_grad_val
        self.autocast_dtype = autocast_dtype
        self.scaler = scaler

    def _autocast(self):
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def __call__(self, batch: Dict[str, Any]) -> Dict[str, float]:
        self.model.train()
        batch = to_device(batch, self.device)
        with self._autocast():
            loss, metrics = self.objective(self.model, batch)
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"the loss is {loss.item()}")
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        grad_norm = self._clip_gradients()
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        return {"loss": loss.item(), "grad_norm": grad_norm, **metrics}

    def _clip_gradients(self) -> float:
        params = [p for p in self.model.parameters() if p.grad is not None]
        if self.clip_grad_val is not None:
            torch.nn.utils.clip_grad_value_(params, self.clip_grad_val)
        max_norm = self.clip_grad_l2norm if self.clip_grad_l2norm is not None else math.inf
        return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
