"""Initializing a model from another run's checkpoint (fine-tuning from pretraining).

The encoder of a MaskFeat (or MAE) checkpoint goes into a classifier: both use
PySlowFast's flat MViT names (patch_embed.proj, cls_token, pos_embed*, blocks.N.*,
norm), so loading is by name. Pretraining-only parts (prediction head, mask token,
decoder, PySlowFast's HOG filters) are dropped; tensors whose shape follows the input
geometry (position tables, 2-D kernels) are fitted to the model
(slowmask.models.checkpoint_geometry); what the checkpoint lacks (the classifier head)
keeps its initialization. One log message says what was loaded, fitted, skipped and new.
"""

import logging
from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

import torch
from torch import Tensor, nn

from slowmask.models.checkpoint_geometry import adapt

from .checkpoint import CheckpointError, check_finite, read_checkpoint, unwrapped

logger = logging.getLogger(__name__)

# Name prefixes of pretraining-only tensors: MaskFeat's prediction head and mask token,
# MAE's decoder, PySlowFast's fixed HOG filters.
PRETRAINING_ONLY = ("pred_head.", "mask_token", "decoder", "hogs.")


@dataclass
class LoadReport:
    """What `load_pretrained` did with each name.

    loaded: names copied as they are; fitted: names reshaped to the model, with
    (checkpoint shape, model shape); skipped: checkpoint names not used, with the reason;
    new: model names the checkpoint did not provide (they keep their initialization).
    """

    loaded: List[str] = field(default_factory=list)
    fitted: Dict[str, Tuple[Tuple[int, ...], Tuple[int, ...]]] = field(default_factory=dict)
    skipped: Dict[str, str] = field(default_factory=dict)
    new: List[str] = field(default_factory=list)

    def summary(self) -> str:
        fitted = ", ".join(f"{k} {list(a)} -> {list(b)}" for k, (a, b) in self.fitted.items())
        skipped = ", ".join(f"{k} ({why})" for k, why in self.skipped.items())
        return (
            f"{len(self.loaded)} tensors loaded as they are; {len(self.fitted)} fitted to the model's "
            f"geometry: {fitted or 'none'}; {len(self.skipped)} skipped: {skipped or 'none'}; "
            f"{len(self.new)} new (initialized): {', '.join(self.new) or 'none'}"
        )


def renamed(state: Dict[str, Tensor], patterns: Sequence[str]) -> Dict[str, Tensor]:
    """Remove the first occurrence of each pattern from every key (PySlowFast's
    TRAIN.CHECKPOINT_CLEAR_NAME_PATTERN), and a DistributedDataParallel `module.` prefix."""
    out = {}
    for key, value in state.items():
        key = key[len("module.") :] if key.startswith("module.") else key
        for pattern in patterns:
            key = key.replace(pattern, "", 1)
        out[key] = value
    return out


def match_state(
    state: Dict[str, Tensor], model: nn.Module, drop: Sequence[str] = PRETRAINING_ONLY
) -> Tuple[Dict[str, Tensor], LoadReport]:
    """The part of `state` that goes into `model` (fitted where the geometry differs).

    Raises:
        CheckpointError: a tensor's shape differs for a reason no rule covers (another
            width or depth: another architecture), or nothing of the model is in `state`.
    """
    own = unwrapped(model).state_dict()
    grid = tuple(getattr(unwrapped(model), "patch_grid", (1, 1, 1)))
    num_prefix = int(getattr(unwrapped(model), "num_prefix", 0))
    report, to_load, misfits = LoadReport(), {}, []
    for name, value in state.items():
        if name.startswith(drop):
            report.skipped[name] = "pretraining only"
        elif name not in own:
            report.skipped[name] = "not in this model"
        elif value.shape == own[name].shape:
            to_load[name] = value
            report.loaded.append(name)
        else:
            try:
                to_load[name] = adapt(name, value, own[name].shape, grid, num_prefix)
            except ValueError as error:
                misfits.append(f"{name}: {error}")
                continue
            report.fitted[name] = (tuple(value.shape), tuple(own[name].shape))
    if misfits:
        raise CheckpointError(
            "the checkpoint was written for another architecture (or width/depth): "
            + "; ".join(misfits[:5]) + (f"; and {len(misfits) - 5} more" if len(misfits) > 5 else "")
        )
    trunk = [name for name in to_load if not name.startswith(("head.", "norm."))]
    if not trunk:
        raise CheckpointError(
            "no tensor of the checkpoint fits this model's encoder: it was written for another "
            f"architecture (its first names: {', '.join(list(state)[:5]) or 'none'})"
        )
    report.new = [name for name in own if name not in to_load]
    return to_load, report


def load_pretrained(
    path: str, model: nn.Module, clear_name_patterns: Sequence[str] = (), drop: Sequence[str] = PRETRAINING_ONLY
) -> LoadReport:
    """Initialize `model` from the weights of the checkpoint at `path` (no optimizer
    state, no epoch) and log, once, what was loaded, fitted, skipped and new. Weights
    that are not finite are refused (CheckpointError), naming the tensors."""
    state = read_checkpoint(path)["model_state"]
    check_finite(path, state)
    state = renamed(state, clear_name_patterns)
    try:
        to_load, report = match_state(state, model, tuple(drop))
    except CheckpointError as error:
        raise CheckpointError(f"{path}: {error}") from error
    with torch.no_grad():
        unwrapped(model).load_state_dict(to_load, strict=False)
    logger.info("initialized from %s: %s", path, report.summary())
    return report
