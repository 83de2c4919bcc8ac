"""Optimizer with MViT's parameter groups: no weight decay on norms and biases
(SOLVER.ZERO_WD_1D_PARAM) and on position embeddings, class/mask tokens and relative
position tables (MVIT.ZERO_DECAY_POS_CLS), as PySlowFast groups them."""

import logging
from typing import Dict, Iterable, List

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


def param_groups(
    named_params: Iterable,
    weight_decay: float,
    zero_wd_1d: bool,
    zero_wd_position_and_tokens: bool,
) -> List[Dict]:
    """Split trainable parameters into a decayed and a non-decayed group."""
    decay, no_decay = [], []
    for name, param in named_params:
        if not param.requires_grad:
            continue
        skip = (zero_wd_1d and _is_one_dim(name, param)) or (
            zero_wd_position_and_tokens and _is_position_or_token(name)
        )
        (no_decay if skip else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return [group for group in groups if group["params"]]


def build_optimizer(cfg: CfgNode, model: nn.Module) -> torch.optim.Optimizer:
    """SGD, Adam or AdamW over `model`'s parameter groups; the learning rate is set
    per iteration by the schedule."""
    solver = cfg.SOLVER
    if solver.LAYER_DECAY != 1.0:
        raise NotImplementedError(
            f"SOLVER.LAYER_DECAY {solver.LAYER_DECAY}: layer-wise learning-rate decay is not "
            "available yet; set SOLVER.LAYER_DECAY 1.0"
        )
    groups = param_groups(
        model.named_parameters(),
        solver.WEIGHT_DECAY,
        solver.ZERO_WD_1D_PARAM,
        cfg.MVIT.ZERO_DECAY_POS_CLS,
    )
    logger.info(
        "optimizer %s: %s parameter tensors",
        solver.OPTIMIZING_METHOD,
        " + ".join(f"{len(g['params'])} (wd {g['weight_decay']})" for g in groups),
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
