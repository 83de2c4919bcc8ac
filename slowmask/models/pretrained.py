"""Reading a checkpoint's weights, and initializing a model from another run's checkpoint.

A checkpoint is PySlowFast's dict with `model_state` (name -> tensor), read with
`torch.load(weights_only=True)`: a checkpoint holds tensors and plain values only, and a
file that asks for any other Python object is refused unread. Weights that are not finite
(NaN, inf) are refused when loaded into a model, naming the tensors. Saving, resuming and
pruning a run's own checkpoints is the engine's (slowmask/engine/checkpoint.py).

Initializing a model from another run's checkpoint (fine-tuning from pretraining, a
distillation teacher: `load_pretrained`): the encoder of a MaskFeat (or MAE) checkpoint
goes into a classifier; both use PySlowFast's flat MViT names (patch_embed.proj, cls_token,
pos_embed*, blocks.N.*, norm), so loading is by name. Pretraining-only parts (prediction
head, mask token, decoder, PySlowFast's HOG filters) are dropped; tensors whose shape
follows the input geometry (position tables, 2-D kernels) are fitted to the model
(checkpoint_geometry.py); what the checkpoint lacks (the classifier head) keeps its
initialization. One log message says what was loaded, fitted, skipped and new, and a
warning names any position table, class token or patch embedding dropped or created: the
model's stem does not fit the checkpoint's.
"""

import io
import logging
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Dict, List, Optional, Sequence, Tuple

import torch
from iopath.common.file_io import g_pathmgr
from torch import Tensor, nn

from slowmask.utils.errors import SlowmaskError

from .checkpoint_geometry import adapt

logger = logging.getLogger(__name__)


def unwrapped(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel wrapper, so names carry no `module.`."""
    return model.module if hasattr(model, "module") else model


# PySlowFast's Caffe2 model-zoo checkpoints are pickled .pkl files of numpy blobs.
CAFFE2_HINT = (
    " (a .pkl file is likely a Caffe2 checkpoint: Caffe2 checkpoints are out of scope for slowmask; "
    "convert it to a PyTorch .pyth with PySlowFast first)"
)
# How torch's weights-only unpickler names an object it refuses to load: "GLOBAL module.name".
_REFUSED_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
# The first bytes of a zip archive: torch.save's format since PyTorch 1.6.
ZIP_MAGIC = b"PK\x03\x04"


class CheckpointError(SlowmaskError, RuntimeError):
    """A checkpoint that cannot be read or does not fit the model."""

    kind = "checkpoint"


def read_checkpoint(path: str) -> Dict[str, Any]:
    """Read a checkpoint dict, with one clear error for a missing or unreadable file."""
    if not g_pathmgr.exists(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    if g_pathmgr.isdir(path):
        raise CheckpointError(f"{path} is a folder, not a checkpoint: name a checkpoint file in it (*.pyth)")
    with g_pathmgr.open(path, "rb") as f:
        data = f.read()
    if not data:
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint: empty file (0 bytes; its write never began)")
    member = damaged_member(io.BytesIO(data))
    if member is not None:
        raise CheckpointError(
            f"{path} is damaged: its member {member} fails its CRC-32 check (its bytes changed after it was "
            "written: a disk, memory or copy error); use an earlier checkpoint, or copy this one again from its source"
        )
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:  # torch's text would advise weights_only=False: not relayed
        raise CheckpointError(_refused_pickle(path, error)) from None
    except Exception as error:  # any other failure to unpickle means the same thing to the user
        hint = CAFFE2_HINT if path.endswith(".pkl") else ""
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint{hint}: {error}") from error
    if not isinstance(state, dict) or "model_state" not in state:
        raise CheckpointError(f"{path} is not a checkpoint: it has no 'model_state'")
    return state



def damaged_member(file: BinaryIO) -> Optional[str]:
    """The first member of a torch zip checkpoint whose bytes fail their CRC-32, or None:
    also for a legacy (non-zip) file, which carries no checksum, and for a zip too broken
    to open (truncated), which torch.load reports. Reads the whole file once."""
    if file.read(len(ZIP_MAGIC)) != ZIP_MAGIC:
        return None
    file.seek(0)
    try:
        archive = zipfile.ZipFile(file)
    except zipfile.BadZipFile:
        return None
    with archive:
        return archive.testzip()


def _refused_pickle(path: str, error: pickle.UnpicklingError) -> str:
    """Why the weights-only unpickler refused a file: the Python object it asked for,
    or torch's specific reason. torch's own message advises retrying with
    weights_only=False, the one step that would run a malicious file's payload."""
    hint = CAFFE2_HINT if path.endswith(".pkl") else ""
    refused = _REFUSED_GLOBAL.search(str(error))
    if refused is None:
        paragraphs = [part.strip() for part in str(error).split("\n\n")[1:]]
        reason = "; ".join(part for part in paragraphs if part and "torch.load" not in part) or "not a pickle"
        return f"{path} is not a readable PyTorch checkpoint{hint}: {reason}"
    return (
        f"{path} is not a plain checkpoint{hint}: it asks to load the Python object {refused.group(1)}, which a "
        "checkpoint of tensors and numbers never needs, so it was refused unread. Do not load it with "
        "weights_only=False: that would run whatever the file holds; get the checkpoint again from a "
        "source you trust"
    )


def nonfinite_tensors(state: Dict[str, Any]) -> Dict[str, int]:
    """{name: count of NaN / inf values} of the floating-point tensors in a model state."""
    counts = {}
    for name, value in state.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            bad = int((~torch.isfinite(value)).sum())
            if bad:
                counts[name] = bad
    return counts


def check_finite(path: str, state: Dict[str, Any]) -> None:
    """Refuse a model state with NaN or inf values, naming the tensors: a model made of
    them gives NaN for every clip.

    Raises:
        CheckpointError: some tensor is not finite.
    """
    counts = nonfinite_tensors(state)
    if counts:
        named = ", ".join(f"{name} ({bad} of {state[name].numel()})" for name, bad in list(counts.items())[:5])
        more = f" and {len(counts) - 5} more" if len(counts) > 5 else ""
        raise CheckpointError(
            f"{path} holds weights that are not finite (NaN or inf) in {len(counts)} tensor(s): {named}{more}; the run "
            "that wrote it diverged: use an earlier checkpoint of it"
        )


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
    dropped, created = report.unmatched_stem()
    if dropped or created:
        logger.warning(
            "%s does not fit this model's stem: dropped from the checkpoint: %s; created by the model (not "
            "pretrained): %s. Fine-tune with a config whose position embedding and class token match the "
            "pretraining config (see the README's recipe table)",
            path, ", ".join(dropped) or "none", ", ".join(created) or "none",
        )
    return report
