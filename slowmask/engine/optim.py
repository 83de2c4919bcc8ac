"""The optimizer and its learning-rate schedule.

MViT's parameter groups: no weight decay on norms and biases (SOLVER.ZERO_WD_1D_PARAM)
and on position embeddings, class/mask tokens and relative position tables
(MVIT.ZERO_DECAY_POS_CLS), as PySlowFast groups them; and layer-wise learning-rate decay
(SOLVER.LAYER_DECAY, BEiT / MAE fine-tuning), as a per-group `lr_scale` that the
schedule hook multiplies in. Learning-rate schedules are functions of the fractional
epoch (epoch + iter / iters).
"""

import logging
import math
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Tuple

import torch
from fvcore.common.config import CfgNode
from torch import nn

logger = logging.getLogger(__name__)


# Parameter-name fragments of position embeddings, tokens and relative position tables.
POSITION_AND_TOKEN_NAMES = ("pos_embed", "cls_token", "mask_token", "rel_pos")


def _is_one_dim(name: str, param: torch.Tensor) -> bool:
    return param.ndim <= 1 or name.endswith(".bias")


def _is_position_or_token(name: str) -> bool:
    return any(fragment in name for fragment in POSITION_AND_TOKEN_NAMES)


# Parameter-name prefixes of the stem: layer 0 of the layer-wise decay.
STEM_NAMES = ("patch_embed", "cls_token", "mask_token", "pos_embed")


def layer_id(name: str, depth: int) -> int:
    """Layer of a parameter for layer-wise decay (PySlowFast's numbering): 0 for the stem
    (patch embedding, tokens, position embeddings), i + 1 for block i, depth + 1 for
    everything after the blocks (final norm, head)."""
    if name.startswith(STEM_NAMES):
        return 0
    if name.startswith("blocks."):
        return int(name.split(".")[1]) + 1
    return depth + 1


def param_groups(
    named_params: Iterable,
    weight_decay: float,
    zero_wd_1d: bool,
    zero_wd_position_and_tokens: bool,
    layer_decay: float = 1.0,
    depth: int = 0,
) -> List[Dict]:
    """Trainable parameters grouped by (learning-rate scale, weight decay).

    With `layer_decay` < 1, a parameter of layer l (see `layer_id`) gets the learning
    rate scaled by layer_decay ** (depth + 1 - l): the head learns at the full rate,
    each block below at `layer_decay` times the rate of the one above. Each group has
    "params", "weight_decay" and "lr_scale".
    """
    groups: Dict[Tuple[float, float], List] = {}
    for name, param in named_params:
        if not param.requires_grad:
            continue
        skip = (zero_wd_1d and _is_one_dim(name, param)) or (
            zero_wd_position_and_tokens and _is_position_or_token(name)
        )
        scale = layer_decay ** (depth + 1 - layer_id(name, depth)) if layer_decay != 1.0 else 1.0
        groups.setdefault((scale, 0.0 if skip else weight_decay), []).append(param)
    return [
        {"params": params, "weight_decay": decay, "lr_scale": scale}
        for (scale, decay), params in sorted(groups.items(), key=lambda item: (item[0][0], -item[0][1]))
    ]


def build_optimizer(cfg: CfgNode, model: nn.Module) -> torch.optim.Optimizer:
    """SGD, Adam or AdamW over `model`'s parameter groups; the learning rate is set
    per iteration by the schedule."""
    solver = cfg.SOLVER
    if not 0.0 < solver.LAYER_DECAY <= 1.0:
        raise ValueError(f"SOLVER.LAYER_DECAY must lie in (0, 1], got {solver.LAYER_DECAY}")
    groups = param_groups(
        model.named_parameters(),
        solver.WEIGHT_DECAY,
        solver.ZERO_WD_1D_PARAM,
        cfg.MVIT.ZERO_DECAY_POS_CLS,
        layer_decay=solver.LAYER_DECAY,
        depth=cfg.MVIT.DEPTH,
    )
    if not groups:
        raise ValueError("the model has no trainable parameters")
    logger.info(
        "optimizer %s: %s parameter tensors",
        solver.OPTIMIZING_METHOD,
        " + ".join(f"{len(g['params'])} (wd {g['weight_decay']}, lr x{g['lr_scale']:.3g})" for g in groups),
    )
    return OPTIMIZERS[solver.OPTIMIZING_METHOD](groups, solver)


# SOLVER.OPTIMIZING_METHOD -> constructor over (param groups, SOLVER node).
OPTIMIZERS = {
    "sgd": lambda groups, s: torch.optim.SGD(
        groups, lr=s.BASE_LR, momentum=s.MOMENTUM, dampening=s.DAMPENING, nesterov=s.NESTEROV
    ),
    "adam": lambda groups, s: torch.optim.Adam(groups, lr=s.BASE_LR, betas=tuple(s.BETAS)),
    "adamw": lambda groups, s: torch.optim.AdamW(
        groups, lr=s.BASE_LR, betas=tuple(s.BETAS), eps=1e-8
    ),
}


# Learning-rate schedules.

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
