"""A checkpoint's weights in a model: the difference between the two, and initializing a
model from another run's checkpoint.

A mismatch between a checkpoint and a model is told as a short diff (`state_diff`):
`load_state_dict` reports one line per key, hundreds of lines for a checkpoint of
another architecture (PySlowFast's model-zoo users know the wall of text); here keys are
grouped by module, blocks.N collapsed into ranges, so the diff reads like
"missing: blocks.0-15.attn.rel_pos_{h,w,t} (48)". A tool that uses a run's trained
weights loads them strictly (`load_weights`): a mismatch is a WeightsMismatchError with
that diff.

Initializing a model from another run's checkpoint (fine-tuning from pretraining, a
distillation teacher: `load_pretrained`): the encoder of a MaskFeat (or MAE) checkpoint
goes into a classifier; both use PySlowFast's flat MViT names (patch_embed.proj, cls_token,
pos_embed*, blocks.N.*, norm), so loading is by name. Pretraining-only parts (prediction
head, mask token, decoder, PySlowFast's HOG filters) are dropped; tensors whose shape
follows the input geometry (position tables, 2-D kernels) are fitted to the model
(geometry.py); what the checkpoint lacks (the classifier head) keeps its
initialization. One log message says what was loaded, fitted, skipped and new, and a
warning names any position table, class token or patch embedding dropped or created: the
model's stem does not fit the checkpoint's. It names the MVIT.* keys of the checkpoint's
stem (`stem_keys`) and the fine-tuning recipe of configs/ that has it (STEM_RECIPES).
"""

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import torch
import yaml
from torch import Tensor, nn

from .files import CheckpointError, check_finite, unwrapped
from .geometry import adapt
from .convert import state_for_model
from .keys import grouped_keys
from .sharded import placed_like, read_any_checkpoint

logger = logging.getLogger(__name__)


# The difference between a checkpoint's state and a model's.

Shape = Tuple[int, ...]


@dataclass
class StateDiff:
    """Keys only the model has (`missing`), only the checkpoint has (`unexpected`), and
    keys both have with other shapes (`shape`: key -> (checkpoint shape, model shape))."""

    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    shape: Dict[str, Tuple[Shape, Shape]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.shape)

    def summary(self, max_lines: int = 12) -> str:
        """The diff in at most about 3 * `max_lines` lines, grouped by module."""
        parts = []
        groups = (("missing in the checkpoint", self.missing), ("unexpected in the checkpoint", self.unexpected))
        for title, keys in groups:
            if keys:
                parts.append(f"{title} ({len(keys)}):\n" + grouped_keys(keys, max_lines))
        if self.shape:
            parts.append(f"shape mismatch ({len(self.shape)}):\n" + self._shape_lines(max_lines))
        return "\n".join(parts) if parts else "no difference"


    def _shape_lines(self, max_lines: int) -> str:
        """Each key with both shapes when they are few; else the keys grouped by module
        and the first few as examples."""
        lines = [f"  {key}: checkpoint {list(c)} vs model {list(m)}" for key, (c, m) in sorted(self.shape.items())]
        if len(lines) <= max_lines:
            return "\n".join(lines)
        examples = max(1, max_lines // 4)
        return grouped_keys(list(self.shape), max_lines) + "\n  e.g.\n" + "\n".join(lines[:examples])


def state_diff(checkpoint_state: Mapping[str, torch.Tensor], model_state: Mapping[str, torch.Tensor]) -> StateDiff:
    """Compare two state dicts (name -> tensor) by names and shapes."""
    diff = StateDiff(
        missing=sorted(k for k in model_state if k not in checkpoint_state),
        unexpected=sorted(k for k in checkpoint_state if k not in model_state),
    )
    for key in sorted(set(checkpoint_state) & set(model_state)):
        ckpt, model = tuple(checkpoint_state[key].shape), tuple(model_state[key].shape)
        if ckpt != model:
            diff.shape[key] = (ckpt, model)
    return diff


# Loading a run's trained weights as they are.

class WeightsMismatchError(CheckpointError):
    """A checkpoint whose model_state has other names or shapes than the model's."""


def load_model_state(path: str, model_state: Dict[str, Tensor], model: nn.Module, fix: str) -> None:
    """Put `model_state` (read from `path`) into `model` with strict names; a mismatch is a
    WeightsMismatchError with the grouped diff (`state_diff`) and `fix`, the advice that fits
    the caller (the raw error has a line per key)."""
    try:
        unwrapped(model).load_state_dict(placed_like(model_state, model), strict=True)
    except RuntimeError:
        diff = state_diff(model_state, unwrapped(model).state_dict())
        raise WeightsMismatchError(f"{path} does not fit this model:\n{diff.summary()}\n{fix}") from None


def load_weights(
    path: str, model: nn.Module, fix: str = "use the config the checkpoint was trained with"
) -> Dict[str, Any]:
    """Put the model_state of the checkpoint at `path` (a file, or a sharded folder read
    whole) into `model` for a tool that uses the trained weights (no optimizer, nothing
    resumed): strict names, finite values; `fix` is the advice a mismatch ends with.
    Returns the checkpoint dict (epoch, cfg ...)."""
    state = read_any_checkpoint(path)
    check_finite(path, state["model_state"])
    load_model_state(path, state["model_state"], model, fix)
    taken = f"epoch {int(state['epoch']) + 1}" if "epoch" in state else ""
    if taken and state.get("iteration") is not None:
        taken += f", after iteration {state['iteration']}"
    logger.info("loaded weights from %s%s", path, f" ({taken})" if taken else "")
    return state


# Initializing a model from another run's weights.

# Name prefixes of pretraining-only tensors: MaskFeat's prediction head and mask token,
# MAE's decoder, PySlowFast's fixed HOG filters.
PRETRAINING_ONLY = ("pred_head.", "mask_token", "decoder", "hogs.")


# Tensors that place and embed the input tokens: without them the pretrained blocks see
# inputs unlike those they were trained on.
STEM_PREFIXES = ("pos_embed", "cls_token", "patch_embed.")


def _is_stem(name: str) -> bool:
    return name.startswith(STEM_PREFIXES)


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

    def unmatched_stem(self) -> Tuple[List[str], List[str]]:
        """(dropped, created): the position tables, class token and patch embedding the
        checkpoint has and the model lacks, and those the model has and the checkpoint
        lacks. Either means the two stems differ (e.g. a VideoMAE checkpoint, fixed
        sine-cosine table and no class token, in a model with separate learned tables and
        a class token): the model would fine-tune from a half-initialized input."""
        dropped = [name for name, why in self.skipped.items() if why == "not in this model" and _is_stem(name)]
        return dropped, [name for name in self.new if _is_stem(name)]

    def unmatched_blocks(self) -> Tuple[List[str], List[str]]:
        """(left out, created): the encoder blocks ("blocks.3") the checkpoint has and the
        model lacks, and those the model has and the checkpoint lacks: the two encoders
        differ in depth. (A classifier's head left out of a pretraining model, or new in a
        classifier, is expected, and not among them.)"""
        left_out = [name for name, why in self.skipped.items() if why == "not in this model"]
        return _blocks(left_out), _blocks(self.new)


def _blocks(names: Sequence[str]) -> List[str]:
    """The encoder blocks ("blocks.3") that `names` belong to, each once, in order."""
    found = (re.match(r"blocks\.\d+(?=\.)", name) for name in names)
    return list(dict.fromkeys(match.group(0) for match in found if match))


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


# The stem a checkpoint was pretrained with, as the keys that build it, and the fine-tuning recipe
# of configs/ with that stem (tests/engine/test_finetune_recipes.py checks each against its yaml).
STEM_RECIPES = (
    ({"MVIT.CLS_EMBED_ON": False, "MVIT.USE_ABS_POS": True, "MVIT.SEP_POS_EMBED": False},
     "k400_ViT_B_VideoMAE_FT.yaml"),
    ({"MVIT.CLS_EMBED_ON": True, "MVIT.USE_ABS_POS": True, "MVIT.SEP_POS_EMBED": True}, "k400_ViT_B_FT.yaml"),
    ({"MVIT.CLS_EMBED_ON": True, "MVIT.USE_ABS_POS": True, "MVIT.SEP_POS_EMBED": False}, "in1k_ViT_B_FT.yaml"),
    ({"MVIT.CLS_EMBED_ON": True, "MVIT.USE_ABS_POS": False}, "k400_MViT_S_FT.yaml"),
)


def stem_keys(state: Mapping[str, Tensor], recorded_cfg: str = "") -> Dict[str, Any]:
    """The MVIT.* keys that build the stem whose tensors `state` holds: class token,
    learned position tables (separate or joint; a joint one fixed to sine-cosine when
    `recorded_cfg`, the checkpoint's YAML, says so) and, without a class token, mean pooling."""
    keys: Dict[str, Any] = {"MVIT.CLS_EMBED_ON": "cls_token" in state, "MVIT.USE_ABS_POS": True}
    if "pos_embed_spatial" in state:
        keys["MVIT.SEP_POS_EMBED"] = True
    elif "pos_embed" in state:
        keys["MVIT.SEP_POS_EMBED"] = False
        fixed = _recorded_mvit_key(recorded_cfg, "USE_FIXED_SINCOS_POS")
        if fixed is not None:
            keys["MVIT.USE_FIXED_SINCOS_POS"] = bool(fixed)
    else:
        keys["MVIT.USE_ABS_POS"] = False
    if "cls_token" not in state:
        keys["MVIT.USE_MEAN_POOLING"] = True
    return keys


def _recorded_mvit_key(recorded_cfg: str, key: str) -> Any:
    """MVIT.`key` of a checkpoint's YAML config, or None when it holds no such value."""
    try:
        recorded = yaml.safe_load(recorded_cfg) if recorded_cfg else None
    except yaml.YAMLError:
        return None
    mvit = recorded.get("MVIT") if isinstance(recorded, dict) else None
    return mvit.get(key) if isinstance(mvit, dict) else None


def stem_advice(keys: Mapping[str, Any]) -> str:
    """How to fine-tune with the stem `keys` describe: the keys, and the recipe of configs/
    that holds them."""
    recipe = next((name for wanted, name in STEM_RECIPES if all(keys.get(k) == v for k, v in wanted.items())), None)
    named = " ".join(f"{key} {value}" for key, value in keys.items())
    return f"fine-tune with the checkpoint's stem, {named}" + (f" (as configs/{recipe} does)" if recipe else "")


def load_pretrained(
    path: str, model: nn.Module, clear_name_patterns: Sequence[str] = (), drop: Sequence[str] = PRETRAINING_ONLY
) -> LoadReport:
    """Initialize `model` from the weights of the checkpoint at `path` (a file or a
    sharded folder; no optimizer state, no epoch) and log, once, what was loaded, fitted,
    skipped and new. Weights that are not finite are refused (CheckpointError), naming the
    tensors. A published checkpoint (checkpoint/convert/: VideoMAE, Hugging Face, timm, V-JEPA ...) is converted
    on the fly, with its conversion report."""
    state, cfg_yaml = state_for_model(path, model)
    check_finite(path, state)
    state = renamed(state, clear_name_patterns)
    try:
        to_load, report = match_state(state, model, tuple(drop))
    except CheckpointError as error:
        raise CheckpointError(f"{path}: {error}") from error
    with torch.no_grad():
        unwrapped(model).load_state_dict(placed_like(to_load, model), strict=False)
    logger.info("initialized from %s: %s", path, report.summary())
    dropped, created = report.unmatched_stem()
    if dropped or created:
        logger.warning(
            "%s does not fit this model's stem: dropped from the checkpoint: %s; created by the model (not "
            "pretrained): %s. To start from all of its stem, %s; see the README's recipe table",
            path, ", ".join(dropped) or "none", ", ".join(created) or "none",
            stem_advice(stem_keys(state, cfg_yaml)),
        )
    left_out, created = report.unmatched_blocks()
    if left_out or created:
        logger.warning("%s and this model differ in depth: blocks left out of the checkpoint: %s; blocks created by "
                       "the model (not pretrained): %s. Give the model the checkpoint's depth (MVIT.DEPTH)",
                       path, ", ".join(left_out) or "none", ", ".join(created) or "none")
    return report
