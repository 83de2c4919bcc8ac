"""Learning-rate schedules as functions of the fractional epoch (epoch + iter / iters)."""

import logging
import math
from dataclasses import dataclass
from typing import Callable, Dict

from fvcore.common.config import CfgNode

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WarmupSchedule:
    """Linear warm-up from `warmup_start_lr` over `warmup_epochs`, then `policy`.

    The warm-up ends where the policy itself would be at `warmup_epochs`, so the
    curve is continuous (as in PySlowFast).
    """

    policy: Callable[[float], float]
    warmup_epochs: float
    warmup_start_lr: float

    def __call__(self, epoch: float) -> float:
        if epoch >= self.warmup_epochs:
            return self.policy(epoch)
        end = self.policy(self.warmup_epochs)
        return self.warmup_start_lr + (end - self.warmup_start_lr) * epoch / self.warmup_epochs


@dataclass(frozen=True)
class Cosine:
    """Half a cosine from `base_lr` at `start_epoch` down to `end_lr` at `max_epoch`."""

    base_lr: float
    end_lr: float
    max_epoch: float
    start_epoch: float = 0.0

    def __call__(self, epoch: float) -> float:
        progress = (epoch - self.start_epoch) / (self.max_epoch - self.start_epoch)
        return self.end_lr + (self.base_lr - self.end_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class Constant:
    base_lr: float

    def __call__(self, epoch: float) -> float:
        return self.base_lr


def scaled_lrs(cfg: CfgNode) -> Dict[str, float]:
    """BASE_LR, WARMUP_START_LR and COSINE_END_LR, multiplied by NUM_SHARDS when
    SOLVER.BASE_LR_SCALE_NUM_SHARDS (PySlowFast's linear scaling with machines)."""
    factor = cfg.NUM_SHARDS if cfg.SOLVER.BASE_LR_SCALE_NUM_SHARDS else 1
    lrs = {
        "base_lr": cfg.SOLVER.BASE_LR * factor,
        "warmup_start_lr": cfg.SOLVER.WARMUP_START_LR * factor,
        "end_lr": cfg.SOLVER.COSINE_END_LR * factor,
    }
    if factor != 1:
        logger.info("learning rates scaled by NUM_SHARDS=%d: %s", factor, lrs)
    return lrs


def build_lr_schedule(cfg: CfgNode) -> Callable[[float], float]:
    """The learning rate as a function of the fractional epoch."""
    lrs = scaled_lrs(cfg)
    solver = cfg.SOLVER
    if solver.LR_POLICY == "cosine":
        start = solver.WARMUP_EPOCHS if solver.COSINE_AFTER_WARMUP else 0.0
        policy = Cosine(lrs["base_lr"], lrs["end_lr"], solver.MAX_EPOCH, start)
    else:
        policy = Constant(lrs["base_lr"])
    if solver.WARMUP_EPOCHS <= 0:
        return policy
    return WarmupSchedule(policy, solver.WARMUP_EPOCHS, lrs["warmup_start_lr"])
