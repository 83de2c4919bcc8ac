"""Checkpoints in PySlowFast's format: a dict with `model_state`, `optimizer_state`,
`epoch`, `cfg` (the YAML string) and `scaler_state` under mixed precision, saved as
OUTPUT_DIR/checkpoints/checkpoint_epoch_XXXXX.pyth.

Writes go to a temporary file that is renamed into place, so a crash never leaves
half a checkpoint under the final name. Reads use `torch.load(weights_only=True)`:
a checkpoint holds tensors and plain values only.
"""

import io
import logging
import os
import re
from typing import Any, Dict, List, Optional

import torch
from iopath.common.file_io import g_pathmgr
from torch import nn

from .state_diff import state_diff

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
BEST_NAME = "checkpoint_best.pyth"
_NAME = re.compile(r"^checkpoint_epoch_(\d{5})\.pyth$")


# PySlowFast's Caffe2 model-zoo checkpoints are pickled .pkl files of numpy blobs.
CAFFE2_HINT = (
    " (a .pkl file is likely a Caffe2 checkpoint: Caffe2 checkpoints are out of scope for slowmask; "
    "convert it to a PyTorch .pyth with PySlowFast first)"
)


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read or does not fit the model."""


def checkpoint_dir(output_dir: str) -> str:
    return os.path.join(output_dir, CHECKPOINT_DIR)


def checkpoint_path(output_dir: str, epoch: int) -> str:
    """Path of the checkpoint written after `epoch` epochs (1-based, as PySlowFast names it)."""
    return os.path.join(checkpoint_dir(output_dir), f"checkpoint_epoch_{epoch:05d}.pyth")


def best_checkpoint_path(output_dir: str) -> str:
    """Path of the checkpoint with the best validation result so far (not resumed from)."""
    return os.path.join(checkpoint_dir(output_dir), BEST_NAME)


def epoch_checkpoints(output_dir: str) -> List[str]:
    """The checkpoint_epoch_XXXXX.pyth files in OUTPUT_DIR/checkpoints, oldest first."""
    folder = checkpoint_dir(output_dir)
    if not g_pathmgr.exists(folder):
        return []
    return [os.path.join(folder, name) for name in sorted(g_pathmgr.ls(folder)) if _NAME.match(name)]


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
) -> None:
    """Write a checkpoint atomically (temporary file, then rename)."""
    state: Dict[str, Any] = {
        "epoch": epoch,
        "model_state": unwrapped(model).state_dict(),
        "optimizer_state": optimizer.state_dict() if optimizer is not None else None,
        "cfg": cfg_yaml,
    }
    if scaler is not None:
        state["scaler_state"] = scaler.state_dict()
    g_pathmgr.mkdirs(os.path.dirname(path))
    temporary = f"{path}.tmp-{os.getpid()}"
    with g_pathmgr.open(temporary, "wb") as f:
        torch.save(state, f)
    _move_into_place(temporary, path)
    logger.info("wrote checkpoint %s", path)


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
    try:
        with g_pathmgr.open(path, "rb") as f:
            state = torch.load(io.BytesIO(f.read()), map_location="cpu", weights_only=True)
    except Exception as error:  # any failure to unpickle means the same thing to the user
        hint = CAFFE2_HINT if path.endswith(".pkl") else ""
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint{hint}: {error}") from error
    if not isinstance(state, dict) or "model_state" not in state:
        raise CheckpointError(f"{path} is not a checkpoint: it has no 'model_state'")
    return state


def resume(
    path: str,
    model: nn.Module,
    optimizer: Optional[torch.optim.Optimizer] = None,
    scaler: Optional[Any] = None,
) -> int:
    """Load model, optimizer and scaler states from `path`; returns the epoch it ended."""
    return _load_states(path, read_checkpoint(path), model, optimizer, scaler)


def resume_newest(
    output_dir: str,
    model: nn.Module,
    optimizer: Optional[torch.optim.Optimizer] = None,
    scaler: Optional[Any] = None,
) -> Optional[int]:
    """Resume from the newest readable checkpoint of the run in `output_dir`; returns the
    epoch it ended, or None when there is none. A newest file that cannot be read (copied
    half-way, truncated by a full disk) is skipped with a warning for the one before it."""
    for path in reversed(epoch_checkpoints(output_dir)):
        try:
            state = read_checkpoint(path)
        except CheckpointError as error:
            logger.warning("skipping unreadable checkpoint, trying the previous one: %s", error)
            continue
        return _load_states(path, state, model, optimizer, scaler)
    return None


def _load_states(
    path: str,
    state: Dict[str, Any],
    model: nn.Module,
    optimizer: Optional[torch.optim.Optimizer],
    scaler: Optional[Any],
) -> int:
    model = unwrapped(model)
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
    logger.info("resumed from %s (epoch %d)", path, state["epoch"])
    return int(state["epoch"])
