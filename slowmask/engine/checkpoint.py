"""Checkpoints in PySlowFast's format: a dict with `model_state`, `optimizer_state`,
`epoch`, `cfg` (the YAML string) and `scaler_state` under mixed precision, saved as
OUTPUT_DIR/checkpoints/checkpoint_epoch_XXXXX.pyth; plus `rng_state` (the global
generators, see rng_state.py) and, in a mid-epoch checkpoint, `iteration`.

`epoch` is the 0-based epoch the checkpoint was taken in: at its end (PySlowFast's
convention; the run resumes at the next epoch) or, when `iteration` is present, after
that many of its batches (the run resumes at the next batch of the same epoch). A
mid-epoch file is named checkpoint_epoch_XXXXX.iter_YYYYYY.pyth with XXXXX = epoch + 1,
the epoch number the logs show, so that names sort by (epoch, iteration) both bytewise
and in a locale's order: epoch 2 after 3 batches sorts between the ends of epochs 1 and 2.

Writes go to a temporary file (NAME.tmp-PID) that is renamed into place, so a crash
never leaves half a checkpoint under the final name. Before writing, the free space is
compared with the checkpoint's size (its tensors' bytes, or the previous checkpoint's
size when larger): too little fails at once, little warns. A write that fails removes its
temporary file; a full disk ends with one DiskFullError.

Reads use `torch.load(weights_only=True)`: a checkpoint holds tensors and plain values
only, and a file that asks for any other Python object is refused unread. Weights that
are not finite (NaN, inf) are refused when loaded into a model, naming the tensors: no
evaluation, feature extraction or resumed training can come out of them.
"""

import io
import logging
import math
import os
import pickle
import re
from typing import Any, Dict, List, Optional, Tuple

import torch
from iopath.common.file_io import g_pathmgr
from torch import nn

from .rng_state import capture_rng_state
from .state_diff import state_diff
from slowmask.utils.errors import SlowmaskError
from slowmask.utils.output_files import DiskFullError, check_free_space, disk_full_cause, free_bytes, remove_quietly

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
BEST_NAME = "checkpoint_best.pyth"
_NAME = re.compile(r"^checkpoint_epoch_(\d{5,})(?:\.iter_(\d{6,}))?\.pyth$")


# PySlowFast's Caffe2 model-zoo checkpoints are pickled .pkl files of numpy blobs.
CAFFE2_HINT = (
    " (a .pkl file is likely a Caffe2 checkpoint: Caffe2 checkpoints are out of scope for slowmask; "
    "convert it to a PyTorch .pyth with PySlowFast first)"
)
DISK_FULL_ADVICE = (
    "free space there (delete old checkpoints, or keep fewer with TRAIN.CHECKPOINT_KEEP_LAST) or move OUTPUT_DIR "
    "to a larger disk, then rerun: the run resumes from its last complete checkpoint"
)
# How torch's weights-only unpickler names an object it refuses to load: "GLOBAL module.name".
_REFUSED_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


class CheckpointError(SlowmaskError, RuntimeError):
    """A checkpoint that cannot be read or does not fit the model."""

    kind = "checkpoint"


def checkpoint_dir(output_dir: str) -> str:
    return os.path.join(output_dir, CHECKPOINT_DIR)


def checkpoint_path(output_dir: str, epoch: int, iteration: Optional[int] = None) -> str:
    """Path of the checkpoint written at the end of epoch `epoch` (1-based, as PySlowFast
    names it), or, given `iteration`, after that many batches of it."""
    within = "" if iteration is None else f".iter_{iteration:06d}"
    return os.path.join(checkpoint_dir(output_dir), f"checkpoint_epoch_{epoch:05d}{within}.pyth")


def best_checkpoint_path(output_dir: str) -> str:
    """Path of the checkpoint with the best validation result so far (not resumed from)."""
    return os.path.join(checkpoint_dir(output_dir), BEST_NAME)


def position_in_name(name: str) -> Optional[Tuple[int, float]]:
    """(epoch, iteration) a checkpoint file name stands for, the end of an epoch counting
    as iteration infinity; None for other names (checkpoint_best.pyth, temporary files)."""
    match = _NAME.match(name)
    if match is None:
        return None
    epoch, iteration = match.groups()
    return int(epoch), math.inf if iteration is None else int(iteration)


def epoch_checkpoints(output_dir: str) -> List[str]:
    """The end-of-epoch and mid-epoch checkpoints in OUTPUT_DIR/checkpoints, oldest first
    by (epoch, iteration); checkpoint_best.pyth is not among them."""
    folder = checkpoint_dir(output_dir)
    if not g_pathmgr.exists(folder):
        return []
    positions = {name: position_in_name(name) for name in g_pathmgr.ls(folder)}
    ours = sorted((name for name, position in positions.items() if position is not None), key=positions.get)
    return [os.path.join(folder, name) for name in ours]


def prune_checkpoints(output_dir: str, keep_last: int) -> List[str]:
    """Delete all but the newest `keep_last` of `epoch_checkpoints` (0 keeps all);
    checkpoint_best.pyth is never deleted. Returns the deleted paths."""
    paths = epoch_checkpoints(output_dir)
    if keep_last <= 0 or len(paths) <= keep_last:
        return []
    deleted = paths[:-keep_last]
    for path in deleted:
        g_pathmgr.rm(path)
    logger.info("deleted %d old checkpoint(s), keeping the newest %d: %s", len(deleted), keep_last, ", ".join(deleted))
    return deleted


def last_checkpoint(output_dir: str) -> Optional[str]:
    """The newest checkpoint in OUTPUT_DIR/checkpoints, or None."""
    paths = epoch_checkpoints(output_dir)
    return paths[-1] if paths else None


def unwrapped(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel wrapper, so names carry no `module.`."""
    return model.module if hasattr(model, "module") else model


def save_checkpoint(
    path: str,
    model: nn.Module,
    optimizer: Optional[torch.optim.Optimizer],
    epoch: int,
    cfg_yaml: str,
    scaler: Optional[Any] = None,
    iteration: Optional[int] = None,
) -> None:
    """Write a checkpoint atomically (temporary file, then rename), with this process's
    generator states. `iteration`: batches of `epoch` done, for a mid-epoch checkpoint."""
    state: Dict[str, Any] = {
        "epoch": epoch,
        "model_state": unwrapped(model).state_dict(),
        "optimizer_state": optimizer.state_dict() if optimizer is not None else None,
        "cfg": cfg_yaml,
        "rng_state": capture_rng_state(),
    }
    if scaler is not None:
        state["scaler_state"] = scaler.state_dict()
    if iteration is not None:
        state["iteration"] = iteration
    g_pathmgr.mkdirs(os.path.dirname(path))
    needed = max(_tensor_bytes(state), _previous_size(os.path.dirname(path)))
    check_free_space(path, needed, DISK_FULL_ADVICE)
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        with g_pathmgr.open(temporary, "wb") as f:
            torch.save(state, f)
    except BaseException as error:  # a killed or failed write must not leave its partial file
        remove_quietly(temporary)
        full = disk_full_cause(error)
        if full is not None:
            raise DiskFullError(path, needed, free_bytes(os.path.dirname(path)), DISK_FULL_ADVICE) from full
        raise
    _move_into_place(temporary, path)
    logger.info("wrote checkpoint %s", path)


def _tensor_bytes(value: Any) -> int:
    """Bytes of the tensors in a nested checkpoint dict: the size of the file, less
    its small zip overhead."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_tensor_bytes(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_tensor_bytes(item) for item in value)
    return 0


def _previous_size(folder: str) -> int:
    """Size of the newest checkpoint in `folder` (0 without one, or on remote storage)."""
    if "://" in folder or not os.path.isdir(folder):
        return 0
    names = sorted((name for name in os.listdir(folder) if position_in_name(name)), key=position_in_name)
    return os.path.getsize(os.path.join(folder, names[-1])) if names else 0


def _move_into_place(temporary: str, path: str) -> None:
    """Rename `temporary` to `path`, replacing it: atomically on a local file system
    (os.replace); through iopath's move for other storage."""
    if "://" not in path:
        os.replace(temporary, path)
        return
    if g_pathmgr.exists(path):
        g_pathmgr.rm(path)
    if not g_pathmgr.mv(temporary, path):
        raise CheckpointError(f"could not move {temporary} to {path}")


def read_checkpoint(path: str) -> Dict[str, Any]:
    """Read a checkpoint dict, with one clear error for a missing or unreadable file."""
    if not g_pathmgr.exists(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    with g_pathmgr.open(path, "rb") as f:
        data = f.read()
    if not data:
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint: empty file (0 bytes; its write never began)")
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


def resume(
    path: str,
    model: nn.Module,
    optimizer: Optional[torch.optim.Optimizer] = None,
    scaler: Optional[Any] = None,
) -> int:
    """Load model, optimizer and scaler states from `path`; returns its `epoch`."""
    return int(load(path, model, optimizer, scaler)["epoch"])


def load(
    path: str,
    model: nn.Module,
    optimizer: Optional[torch.optim.Optimizer] = None,
    scaler: Optional[Any] = None,
) -> Dict[str, Any]:
    """Load model, optimizer and scaler states from `path`; returns the checkpoint dict
    (epoch, iteration, rng_state ... : see resume.ResumePoint)."""
    state = read_checkpoint(path)
    load_states(path, state, model, optimizer, scaler)
    return state


def load_newest(
    output_dir: str,
    model: nn.Module,
    optimizer: Optional[torch.optim.Optimizer] = None,
    scaler: Optional[Any] = None,
) -> Optional[Dict[str, Any]]:
    """Load the newest readable checkpoint of the run in `output_dir` (read_newest);
    returns its dict, or None when there is none."""
    newest = read_newest(output_dir)
    if newest is None:
        return None
    path, state = newest
    load_states(path, state, model, optimizer, scaler)
    return state


def read_newest(output_dir: str) -> Optional[Tuple[str, Dict[str, Any]]]:
    """(path, dict) of the newest readable checkpoint of the run in `output_dir`, by
    (epoch, iteration), or None when there is none. A newest file that cannot be read
    (copied half-way, truncated by a full disk) is skipped with a warning for the one
    before it."""
    for path in reversed(epoch_checkpoints(output_dir)):
        try:
            return path, read_checkpoint(path)
        except CheckpointError as error:
            logger.warning("skipping unreadable checkpoint, trying the previous one: %s", error)
    return None


def load_states(
    path: str,
    state: Dict[str, Any],
    model: nn.Module,
    optimizer: Optional[torch.optim.Optimizer],
    scaler: Optional[Any],
) -> None:
    """Put a checkpoint dict read from `path` into model, optimizer and scaler
    (strict names; weights that are not finite refused, see check_finite)."""
    model = unwrapped(model)
    check_finite(path, state["model_state"])
    try:
        model.load_state_dict(state["model_state"], strict=True)
    except RuntimeError:
        # The raw error has a line per key; the diff groups them by module.
        diff = state_diff(state["model_state"], model.state_dict())
        raise CheckpointError(
            f"{path} does not fit this model:\n{diff.summary()}\nTo initialize a model from another "
            "run's weights (fine-tuning), set TRAIN.CHECKPOINT_EPOCH_RESET True"
        ) from None
    if optimizer is not None and state.get("optimizer_state") is not None:
        optimizer.load_state_dict(state["optimizer_state"])
    if scaler is not None and state.get("scaler_state") is not None:
        scaler.load_state_dict(state["scaler_state"])
    within = f"after iteration {state['iteration']}" if "iteration" in state else "at its end"
    logger.info("resumed from %s (epoch %d, %s)", path, state["epoch"] + 1, within)
