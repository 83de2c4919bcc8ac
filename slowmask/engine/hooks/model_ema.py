"""ModelEma: an exponential moving average of a classifier's weights during fine-tuning
(MODEL.EMA; VideoMAE's and timm's `--model_ema`), kept beside the trained model.

The average follows slowmask/models/ema.py's rule, once per applied optimizer update (it
is one of TrainStep's after-update callbacks): average = decay * average + (1 - decay) *
weights, with the decay of update `step_index` from a MomentumSchedule, rising linearly
from `warmup_start` to `decay` over `warmup_steps` updates, then `decay`. Why a warm-up:
VideoMAE's 0.9999 averages over ~10,000 updates, so in a short run the average would
stay near the initial weights (a fresh head included); the warm-up lets it follow the
weights early and settle later.

The average is this hook's state (Hook.state_dict: saved under the checkpoint's
`hooks_state`, handed back on resume, so a resumed run's average is the uninterrupted
one's, bit for bit). At the end of training (not of a part stopped by a signal) the main
process writes it as a classifier checkpoint, OUTPUT_DIR/checkpoints/checkpoint_ema.pyth,
its `model_state` the averaged weights: TEST.CHECKPOINT "ema" tests it, and every tool
that reads a checkpoint's `model_state` (export, probes, fine-tuning) takes it as it is.
"""

import copy
import logging
from typing import Any, Dict, Optional

import torch
from torch import nn

from slowmask import checkpoint
from slowmask.models.ema import MomentumSchedule, ema_update_

from ..loop import Hook, TrainLoop

logger = logging.getLogger(__name__)

class ModelEma(Hook):
    """The moving average of `model`'s weights, a frozen eval-mode copy (`module`).

    Args:
        model: the plain model the optimizer trains (not a DDP or compiled wrapper); the
            average starts as its copy, so build this after its weights are loaded.
        decay: the decay after the warm-up, in [0, 1).
        warmup_steps: updates over which the decay rises linearly from `warmup_start`
            to `decay` (0: `decay` from the first update).
        device: where the average lives (None: `model`'s device).
        output_dir: where checkpoint_ema.pyth is written at the end of training, with
            `cfg_yaml` as its config; None writes nothing (the other ranks).
    """

    def __init__(
        self,
        model: nn.Module,
        decay: float,
        warmup_steps: int = 0,
        warmup_start: float = 0.0,
        device: Optional[torch.device] = None,
        output_dir: Optional[str] = None,
        cfg_yaml: str = "",
    ) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"MODEL.EMA.DECAY must be in [0, 1), got {decay}")
        self.source = model
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        if device is not None:
            self.module.to(device)
        self.schedule = (MomentumSchedule(warmup_start, decay, warmup_steps) if warmup_steps > 0
                         else MomentumSchedule(decay, decay, 1))
        self.output_dir = output_dir
        self.cfg_yaml = cfg_yaml
        self.updates = 0  # applied updates averaged so far
        self.last_epoch = -1

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def __call__(self, step_index: int) -> None:
        """TrainStep's after-update callback: one update of the average."""
        ema_update_(self.module, self.source, self.schedule(step_index))
        self.updates += 1

    def state_dict(self) -> Dict[str, Any]:
        return {"weights": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.module.load_state_dict(state["weights"])
        self.updates = int(state["updates"])

    def after_epoch(self, loop: TrainLoop) -> None:
        self.last_epoch = loop.epoch

    def after_train(self, loop: TrainLoop) -> None:
        # A run stopped early (a signal) writes it when its resumed part ends.
        if self.output_dir is None or self.last_epoch < 0 or loop.stop_requested:
            return
        path = checkpoint.ema_checkpoint_path(self.output_dir)
        checkpoint.save_checkpoint(path, self.module, None, self.last_epoch, self.cfg_yaml)
        logger.info("the weights' moving average after %d updates (epoch %d): %s", self.updates,
                    self.last_epoch + 1, path)
