"""Optimizer with MViT's parameter groups: no weight decay on norms and biases
(SOLVER.ZERO_WD_1D_PARAM) and on position embeddings, class/mask tokens and relative
position tables (MVIT.ZERO_DECAY_POS_CLS), as PySlowFast groups them; and layer-wise
learning-rate decay (SOLVER.LAYER_DECAY, BEiT / MAE fine-tuning), as a per-group
`lr_scale` that the schedule hook multiplies in."""

import logging
from typing import Dict, Iterable, List, Tuple

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
