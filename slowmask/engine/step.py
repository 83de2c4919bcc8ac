"""One optimization step: forward under autocast, backward (scaled for fp16),
gradient clipping, optimizer update — every `accum_steps` batches under gradient
accumulation; a non-finite loss stops the run or skips the step. Everything a step
needs is decided once, at construction, so the loop itself carries no flags.

On a GPU the host queues work ahead of the device; each read of a device value on the
host (`.item()`, `float()`) makes it wait until the device has caught up. So the step
returns its metrics as device tensors (the logging hook reads them, all at once, at its
log period), and checks the loss for finiteness one step late from a copy in pinned host
memory (`LossWatch`). Two reads remain by nature: skipping a non-finite step
(TRAIN.NONFINITE_LOSS "skip") must know the loss before the backward, and float16's
GradScaler reads its found-inf flag in every update.

After each optimizer update it applied, the step calls its `after_update` callbacks in
order, `callback(step_index)`: the place for what must follow the weights, such as an EMA
target encoder and its momentum schedule (V-JEPA) or an EMA of the model for fine-tuning.
They run once per optimizer step, after the optimizer and float16's gradient scaler, so
they see the new weights; never per micro-batch under gradient accumulation, and never
for an update that did not happen: a step skipped for a non-finite loss
(TRAIN.NONFINITE_LOSS "skip"), or one that float16's GradScaler skipped because its
gradients overflowed (the optimizer's step() then does not run; the step learns it from
the optimizer's post-step hook, without reading the device; a fused optimizer that skips
inside its own step() would count as updated). A model that defines
`after_update(step_index)` takes part through `model_after_update(model)`, which
engine/train.py passes with the plain model (not its DDP or compiled wrapper); other
followers (a model EMA) join the same list.

`step_index` is the optimizer step's position in the run, 0-based: every accumulation
cycle that ended counts, the skipped ones too, as the learning-rate schedule counts time
rather than updates; a schedule reads it directly, and the index after a skipped step
jumps by two. A resumed run's first index is `steps_before` its checkpoint's position.

Around the step sit the two choices made before it runs: the autocast dtype and the
gradient scaler of mixed precision (`mixed_precision`), and the batch norm of the model
(`with_norm_type`).

bfloat16 keeps float32's exponent range, so gradients neither under- nor overflow and
no scaler is needed; float16 needs a GradScaler (whose state goes into checkpoints as
`scaler_state`). bfloat16 is chosen wherever the device computes it: on CPUs and on
GPUs with compute capability 8.0 or more (Ampere, Hopper).

Batch-norm statistics across processes: BN.NORM_TYPE "sync_batchnorm" (PySlowFast's
name) turns every BatchNorm layer into torch's SyncBatchNorm in a multi-process GPU
run, so statistics are taken over the whole batch of the job. The default,
"batchnorm", keeps per-process statistics (as PySlowFast). MViT and ViT have no
batch norm; the linear-probing head (MODEL.LINEAR_PROBE) has one.
"""

import logging
import math
from contextlib import nullcontext
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.distributed.tensor import DTensor

from slowmask.data.collate import to_device
from slowmask.utils.errors import SlowmaskError

from .distributed import any_rank, is_distributed

logger = logging.getLogger(__name__)

# TRAIN.NONFINITE_LOSS values: stop the run, or skip the step.
NONFINITE_CHOICES = ("stop", "skip")


# (model, batch on device) -> (loss, extra metrics: floats or device scalars). Pretraining and
# classification differ here only.
Objective = Callable[[nn.Module, Dict[str, Any]], Tuple[torch.Tensor, Dict[str, Any]]]


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

    def __call__(self, model: nn.Module, batch: Dict[str, Any]) -> Tuple[torch.Tensor, Dict[str, Any]]:
        clip, labels = batch["clip"], batch["label"]
        check_labels(labels, self.num_classes)
        target = labels
        if self.mixer is not None:
            clip, target = self.mixer(clip, labels)
        logits = model(clip)
        top1_err = 100.0 * (logits.argmax(dim=1) != labels).float().mean().detach()
        return self.loss(logits, target), {"top1_err": top1_err}


# (index of the optimizer step in the run, 0-based) -> None: called after each update
# that was applied (see the module's docstring).
AfterUpdate = Callable[[int], None]


def model_after_update(model: nn.Module) -> List[AfterUpdate]:
    """[model.after_update] when the model defines one (a method whose target follows
    the trained weights), else []."""
    hook = getattr(model, "after_update", None)
    return [hook] if callable(hook) else []


def steps_before(epoch: int, iteration: int, iters_per_epoch: int, accum_steps: int) -> int:
    """Optimizer steps (accumulation cycles, skipped ones included) a run has made before
    batch `iteration` of 0-based `epoch`: each epoch of `iters_per_epoch` batches ends its
    last cycle early (`mark_epoch_end`), so it makes ceil(iters_per_epoch / accum_steps)."""
    per_epoch = -(-iters_per_epoch // accum_steps)
    return epoch * per_epoch + -(-iteration // accum_steps)


# (batch from the loader, device) -> the batch on the device, as the objective takes it:
# `to_device`, or a data.collate.ClipsToDevice that normalizes uint8 clips there.
BatchTransfer = Callable[[Dict[str, Any], torch.device], Dict[str, Any]]


class LossWatch:
    """Stops a run on a non-finite loss without making the host wait for the device.

    On the CPU the loss is at hand and checked at once. On a GPU `watch` queues a copy
    of it into pinned host memory behind the forward, with an event marking the copy's
    end, and `check` reads the copies of the steps before (`wait`: the current one too);
    the event of the step before has passed long ago when the next step starts, so the
    host does not wait. The run then stops one step after the non-finite loss, before
    that step's backward; whoever saves weights calls `check(wait=True)` first, so no
    checkpoint holds an update made from it. Every rank checks the same steps (DDP).
    """

    def __init__(self, device: torch.device) -> None:
        self.deferred = device.type == "cuda"
        self._pending: List[Tuple[torch.Tensor, Any]] = []  # (host copy, event), oldest first

    def watch(self, loss: torch.Tensor) -> None:
        """Queue `loss` (a scalar on the step's device) for the next `check`."""
        if not self.deferred:
            self._pending.append((loss.detach(), None))
            return
        copy = torch.empty((), dtype=loss.dtype, pin_memory=True)
        copy.copy_(loss.detach(), non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        self._pending.append((copy, event))

    def check(self, wait: bool = False) -> None:
        """Raise NonFiniteLossError if a watched loss (on any rank) is NaN or infinite;
        the newest one is left for later unless `wait` or on the CPU."""
        ready = self._pending if wait or not self.deferred else self._pending[:-1]
        if not ready:
            return
        self._pending = self._pending[len(ready):]
        for copy, event in ready:
            if event is not None:
                event.synchronize()
        values = [float(copy) for copy, _ in ready]
        bad = next((v for v in values if not math.isfinite(v)), None)
        if any_rank(bad is not None):
            if bad is None:
                raise NonFiniteLossError(f"the loss is non-finite on another rank (here {values[-1]:.5g})")
            late = "" if len(values) == 1 and not self.deferred else " (read after the step that made it)"
            raise NonFiniteLossError(f"the loss is {bad}{late}")


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
        transfer: moves each batch to `device` (see BatchTransfer); built by
            data.build.build_batch_transfer from DATA.NORMALIZE_ON_DEVICE.
        after_update: called in order, `callback(step_index)`, after each optimizer
            update that was applied (see AfterUpdate and the module's docstring).
        steps_done: optimizer steps the run made before this step's first batch (a
            resumed run's, `steps_before`); the first `step_index` is this.
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
        transfer: BatchTransfer = to_device,
        after_update: Sequence[AfterUpdate] = (),
        steps_done: int = 0,
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
        self.transfer = transfer
        self._in_cycle = 0  # micro-batches of the current accumulation cycle run so far
        self._accumulated = 0  # of these, the ones whose gradients are held in .grad
        self._epoch_end_next = False
        self.losses = LossWatch(device)
        self.after_update = list(after_update)
        self.steps_done = steps_done  # optimizer steps (cycles ended) of the run so far
        self._updated = False  # whether the optimizer applied the current cycle's update
        if self.after_update:
            # Called by the optimizer's step() only: not when GradScaler skips the update.
            optimizer.register_step_post_hook(self._note_update)

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

    def raise_if_nonfinite(self) -> None:
        """Check every loss so far (one wait for the device); before saving weights."""
        self.losses.check(wait=True)

    def __call__(self, batch: Dict[str, Any]) -> Dict[str, Any]:
        """Metrics of the step: "loss" (and "grad_norm", "top1_err") as device tensors,
        the others floats."""
        self.model.train()
        batch = self.transfer(batch, self.device)
        if self._in_cycle == 0:
            self.optimizer.zero_grad(set_to_none=True)
        self._in_cycle += 1
        ends_cycle = self._in_cycle == self.accum_steps or self._epoch_end_next
        self._epoch_end_next = False
        with self._gradient_sync(ends_cycle):
            with self._autocast():
                loss, metrics = self.objective(self.model, batch)
            if self.skip_nonfinite:
                value = loss.item()  # the skip is decided before the backward: the value is needed now
                if any_rank(not math.isfinite(value)):
                    return self._skip(ends_cycle, metrics)
            else:
                self.losses.watch(loss)
                self._check_watched(ends_cycle)
            self._backward(loss / self.accum_steps)
        out = {"loss": loss.detach(), **metrics}
        if self.skip_nonfinite:
            out["nonfinite_skip"] = 0.0
        if ends_cycle:
            grad_norm = self._update()
            if grad_norm is not None:
                out["grad_norm"] = grad_norm
        return out

    def _check_watched(self, ends_cycle: bool) -> None:
        """LossWatch.check, a raise ending the accumulation cycle as a skip would."""
        try:
            self.losses.check()
        except NonFiniteLossError:
            if ends_cycle:
                self._end_cycle()
            raise

    def _end_cycle(self) -> None:
        self._in_cycle = 0
        self.steps_done += 1

    def _backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
        self._accumulated += 1

    def _skip(self, ends_cycle: bool, metrics: Dict[str, Any]) -> Dict[str, Any]:
        """Drop the step (a non-finite loss here or on another rank) and its cycle's gradients."""
        if ends_cycle:
            self._end_cycle()
        self.optimizer.zero_grad(set_to_none=True)
        self._accumulated = 0
        return {**metrics, "nonfinite_skip": 1.0}

    def _update(self) -> Optional[torch.Tensor]:
        """Clip and apply the cycle's gradients; returns their norm, a device scalar
        (None when a skipped step dropped them all)."""
        held, self._accumulated, index = self._accumulated, 0, self.steps_done
        self._end_cycle()
        if held == 0:
            return None
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if held != self.accum_steps:
            self._rescale_gradients(self.accum_steps / held)
        grad_norm = self._clip_gradients()
        self._updated = False
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        if self._updated:
            for callback in self.after_update:
                callback(index)
        return grad_norm

    def _note_update(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self._updated = True

    def _rescale_gradients(self, factor: float) -> None:
        for param in self.model.parameters():
            if param.grad is not None:
                param.grad.mul_(factor)

    def _clip_gradients(self) -> torch.Tensor:
        params = [p for p in self.model.parameters() if p.grad is not None]
        if self.clip_grad_val is not None:
            torch.nn.utils.clip_grad_value_(params, self.clip_grad_val)
        max_norm = self.clip_grad_l2norm if self.clip_grad_l2norm is not None else math.inf
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm).detach()
        # A sharded model's norm is a DTensor of partial sums: the whole norm, on every rank.
        return norm.full_tensor() if isinstance(norm, DTensor) else norm


# Mixed precision.

# MIXED_PRECISION_DTYPE values -> autocast dtype ("auto" picks one per device).
DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}
PRECISION_CHOICES = ("auto", *DTYPES)


def supports_bfloat16(device: torch.device) -> bool:
    """CPUs always; CUDA devices that compute in bfloat16 natively."""
    if device.type == "cpu":
        return True
    return device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False)


def autocast_dtype(choice: str, device: torch.device) -> torch.dtype:
    """The dtype for `choice` ("auto", "bfloat16", "float16") on `device`; ValueError
    for an unknown choice or bfloat16 forced where the device lacks it."""
    if choice not in PRECISION_CHOICES:
        raise ValueError(f"mixed-precision dtype {choice!r}; supported: {', '.join(map(repr, PRECISION_CHOICES))}")
    if choice == "auto":
        return torch.bfloat16 if supports_bfloat16(device) else torch.float16
    if choice == "bfloat16" and not supports_bfloat16(device):
        raise ValueError(f"bfloat16 is not supported on {device}; use float16 (with a gradient scaler) or auto")
    return DTYPES[choice]


def mixed_precision(
    enabled: bool, choice: str, device: torch.device
) -> Tuple[Optional[torch.dtype], Optional[torch.amp.GradScaler]]:
    """(autocast dtype, GradScaler) for a training step: (None, None) when disabled;
    a scaler only for float16."""
    if not enabled:
        return None, None
    dtype = autocast_dtype(choice, device)
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
    logger.info("mixed precision: %s autocast on %s%s", dtype, device, " with a gradient scaler" if scaler else "")
    return dtype, scaler


# Batch norm across processes.

def _synchronized(model: nn.Module, device: torch.device) -> nn.Module:
    if not is_distributed():
        return model  # one process: its statistics are the job's
    if device.type == "cpu":
        raise ValueError(
            'BN.NORM_TYPE "sync_batchnorm" needs GPUs: torch\'s SyncBatchNorm does not run on the CPU; '
            'use BN.NORM_TYPE "batchnorm" (per-process statistics) for CPU runs'
        )
    return nn.SyncBatchNorm.convert_sync_batchnorm(model)


# BN.NORM_TYPE -> (model, device) -> the model with that batch norm (the same parameters).
NORM_TYPES: Dict[str, Callable[[nn.Module, torch.device], nn.Module]] = {
    "batchnorm": lambda model, device: model,
    "sync_batchnorm": _synchronized,
}


def with_norm_type(model: nn.Module, norm_type: str, device: torch.device) -> nn.Module:
    """`model` with its BatchNorm layers of `norm_type`; ValueError for other types."""
    if norm_type not in NORM_TYPES:
        raise ValueError(f"BN.NORM_TYPE is {norm_type!r}; supported: {', '.join(map(repr, NORM_TYPES))}")
    return NORM_TYPES[norm_type](model, device)
