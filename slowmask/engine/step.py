"""One optimization step: forward under autocast, backward (scaled for fp16),
gradient clipping, optimizer update — every `accum_steps` batches under gradient
accumulation; a non-finite loss stops the run or skips the step. Everything a step
needs is decided once, at construction, so the loop itself carries no flags."""

import math
from contextlib import nullcontext
from typing import Any, Callable, Dict, Optional, Tuple

import torch
from torch import nn

from slowmask.utils.errors import SlowmaskError

from .distributed import any_rank

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


class NonFiniteLossError(SlowmaskError, FloatingPointError):
    """The loss became NaN or infinite (TRAIN.NONFINITE_LOSS "stop")."""

    kind = "training"


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
    """Runs one training step on a batch (a micro-batch under gradient accumulation)
    and returns its metrics.

    Args:
        accum_steps: micro-batches whose gradients add up before each optimizer update
            (MAE's accum_iter, VideoMAE's update_freq): each loss is divided by
            `accum_steps`, the update (with gradient clipping) comes after the last one,
            and under DDP the others run in `no_sync()`. `mark_epoch_end()` ends a cycle
            early, so no gradient waits across an epoch's end; a shorter cycle's
            gradient is rescaled to the mean of the micro-batches it holds.
        skip_nonfinite: on a non-finite loss, drop the step (no backward, no update, the
            cycle's gradients discarded) and report `nonfinite_skip` 1 instead of raising
            FloatingPointError. Under DDP all ranks agree first (one tiny all-reduce), so
            they all skip or all raise, and none waits for the others in the backward.
    """

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
        accum_steps: int = 1,
        skip_nonfinite: bool = False,
    ) -> None:
        if accum_steps < 1:
            raise ValueError(f"accum_steps must be at least 1, got {accum_steps}")
        self.model = model
        self.optimizer = optimizer
        self.objective = objective
        self.device = device
        self.clip_grad_l2norm = clip_grad_l2norm
        self.clip_grad_val = clip_grad_val
        self.autocast_dtype = autocast_dtype
        self.scaler = scaler
        self.accum_steps = accum_steps
        self.skip_nonfinite = skip_nonfinite
        self._in_cycle = 0  # micro-batches of the current accumulation cycle run so far
        self._accumulated = 0  # of these, the ones whose gradients are held in .grad
        self._epoch_end_next = False

    @property
    def pending_gradients(self) -> bool:
        """True inside an accumulation cycle: gradients (or the cycle's position) wait for
        the update, so a checkpoint now could not resume exactly."""
        return self._in_cycle != 0

    def mark_epoch_end(self) -> None:
        """The next batch is the epoch's last: its step ends the accumulation cycle."""
        self._epoch_end_next = True

    def _autocast(self):
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _gradient_sync(self, ends_cycle: bool):
        """DDP's `no_sync()` for the micro-batches before a cycle's last."""
        no_sync = getattr(self.model, "no_sync", None)
        return nullcontext() if ends_cycle or no_sync is None else no_sync()

    def __call__(self, batch: Dict[str, Any]) -> Dict[str, float]:
        self.model.train()
        batch = to_device(batch, self.device)
        if self._in_cycle == 0:
            self.optimizer.zero_grad(set_to_none=True)
        self._in_cycle += 1
        ends_cycle = self._in_cycle == self.accum_steps or self._epoch_end_next
        self._epoch_end_next = False
        with self._gradient_sync(ends_cycle):
            with self._autocast():
                loss, metrics = self.objective(self.model, batch)
            value = loss.item()
            if any_rank(not math.isfinite(value)):
                return self._nonfinite(value, ends_cycle, metrics)
            self._backward(loss / self.accum_steps)
        out = {"loss": value, **metrics}
        if self.skip_nonfinite:
            out["nonfinite_skip"] = 0.0
        if ends_cycle:
            grad_norm = self._update()
            if grad_norm is not None:
                out["grad_norm"] = grad_norm
        return out

    def _backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
        self._accumulated += 1

    def _nonfinite(self, value: float, ends_cycle: bool, metrics: Dict[str, float]) -> Dict[str, float]:
        """Raise NonFiniteLossError, or drop the step and its cycle's gradients."""
        if ends_cycle:
            self._in_cycle = 0
        if not self.skip_nonfinite:
            if math.isfinite(value):
                raise NonFiniteLossError(f"the loss is non-finite on another rank (here {value:.5g})")
            raise NonFiniteLossError(f"the loss is {value}")
        self.optimizer.zero_grad(set_to_none=True)
        self._accumulated = 0
        return {**metrics, "nonfinite_skip": 1.0}

    def _update(self) -> Optional[float]:
        """Clip and apply the cycle's gradients; returns their norm (None when a skipped
        step dropped them all)."""
        held, self._in_cycle, self._accumulated = self._accumulated, 0, 0
        if held == 0:
            return None
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if held != self.accum_steps:
            self._rescale_gradients(self.accum_steps / held)
        grad_norm = self._clip_gradients()
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        return grad_norm

    def _rescale_gradients(self, factor: float) -> None:
        for param in self.model.parameters():
            if param.grad is not None:
                param.grad.mul_(factor)

    def _clip_gradients(self) -> float:
        params = [p for p in self.model.parameters() if p.grad is not None]
        if self.clip_grad_val is not None:
            torch.nn.utils.clip_grad_value_(params, self.clip_grad_val)
        max_norm = self.clip_grad_l2norm if self.clip_grad_l2norm is not None else math.inf
        return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
