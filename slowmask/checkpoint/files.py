"""A run's checkpoint files: names, saving, reading, pruning, and the generator states.

The format is PySlowFast's: a dict with `model_state`, `optimizer_state`, `epoch`, `cfg`
(the YAML string) and `scaler_state` under mixed precision, saved as
OUTPUT_DIR/checkpoints/checkpoint_epoch_XXXXX.pyth; plus `rng_state` (the global
generators, see `capture_rng_state`), `hooks_state` (the training hooks' own states, see
engine/loop.py's Hook.state_dict) and, in a mid-epoch checkpoint, `iteration` (batches
done) and `items` (the items they consumed, all processes together: see
engine/resume.py's ResumePoint).

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

Reads (`read_checkpoint`) use `torch.load(weights_only=True)`: a checkpoint holds tensors
and plain values only, and a file that asks for any other Python object is refused
unread. A torch zip checkpoint carries a CRC-32 of each member: `read_checkpoint` checks
them first (`damaged_member`), so a file whose bytes changed after it was written (a
disk, memory or copy error) is refused naming the damaged member, not loaded with its
flipped values. Legacy (non-zip) torch files carry no checksum and are read unchecked.
A safetensors file (safetensors_file.py: weights, epoch and cfg, no pickle) is read too,
its header checked and each tensor against the CRC-32 its metadata holds.
Weights that are not finite (NaN, inf) are refused when loaded into a model, naming the
tensors (`check_finite`). An unreadable checkpoint met when resuming or pruning is set
aside, renamed NAME.unreadable (`set_aside`): never deleted, never taken for the newest
checkpoint again.

The generator states (`capture_rng_state`) are kept in plain types and tensors, so that
`torch.load(weights_only=True)` reads them.

A sharded run (TRAIN.SHARDING) writes each checkpoint as a folder named without ".pyth"
(checkpoint/sharded.py); names, order, setting aside and pruning treat it as a file.
"""

import io
import logging
import math
import os
import pickle
import random
import re
import shutil
import zipfile
from typing import Any, BinaryIO, Dict, List, Optional, Set, Tuple

import numpy as np
import torch
from iopath.common.file_io import g_pathmgr
from torch import nn

from slowmask.utils.errors import SlowmaskError
from slowmask.utils.output_files import DiskFullError, check_free_space, disk_full_cause, free_bytes, remove_quietly

from .safetensors_file import is_safetensors, read_safetensors_checkpoint

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
BEST_NAME = "checkpoint_best.pyth"
# Model EMA's average of a fine-tuned classifier (MODEL.EMA), written at the end of training.
EMA_NAME = "checkpoint_ema.pyth"
_NAME = re.compile(r"^checkpoint_epoch_(\d{5,})(?:\.iter_(\d{6,}))?(?:\.pyth)?$")  # no .pyth: a sharded folder
SHARDED_RUN_STATE = "run_state.pyth"  # in a sharded folder: this dict without the tensors (empty model_state)
SHARDED_INDEX = ".metadata"  # in a sharded folder: torch.distributed.checkpoint's index of the shards
# The name an unreadable checkpoint is renamed to (with -N appended when it is taken).
UNREADABLE_SUFFIX = ".unreadable"

DISK_FULL_ADVICE = (
    "free space there (delete old checkpoints, or keep fewer with TRAIN.CHECKPOINT_KEEP_LAST) or move OUTPUT_DIR "
    "to a larger disk, then rerun: the run resumes from its last complete checkpoint"
)

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


# Names and places.

def checkpoint_dir(output_dir: str) -> str:
    return os.path.join(output_dir, CHECKPOINT_DIR)


def checkpoint_path(output_dir: str, epoch: int, iteration: Optional[int] = None, sharded: bool = False) -> str:
    """Path of the checkpoint written at the end of epoch `epoch` (1-based, as PySlowFast
    names it), or, given `iteration`, after that many batches of it; `sharded`: the folder's."""
    within = "" if iteration is None else f".iter_{iteration:06d}"
    return os.path.join(checkpoint_dir(output_dir), f"checkpoint_epoch_{epoch:05d}{within}{'' if sharded else '.pyth'}")


def best_checkpoint_path(output_dir: str) -> str:
    """Path of the checkpoint with the best validation result so far (not resumed from)."""
    return os.path.join(checkpoint_dir(output_dir), BEST_NAME)


def ema_checkpoint_path(output_dir: str) -> str:
    """Path of the classifier whose `model_state` is the run's moving average of its weights."""
    return os.path.join(checkpoint_dir(output_dir), EMA_NAME)


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


def last_checkpoint(output_dir: str) -> Optional[str]:
    """The newest checkpoint in OUTPUT_DIR/checkpoints, or None."""
    paths = epoch_checkpoints(output_dir)
    return paths[-1] if paths else None


def unwrapped(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel wrapper, so names carry no `module.`."""
    return model.module if hasattr(model, "module") else model


# Writing.

def save_checkpoint(
    path: str,
    model: nn.Module,
    optimizer: Optional[torch.optim.Optimizer],
    epoch: int,
    cfg_yaml: str,
    scaler: Optional[Any] = None,
    iteration: Optional[int] = None,
    items: Optional[int] = None,
    hooks_state: Optional[Dict[str, Any]] = None,
) -> None:
    """Write a checkpoint atomically (temporary file, then rename), with this process's
    generator states. `iteration`: batches of `epoch` done, for a mid-epoch checkpoint;
    `items`: the items of `epoch` those batches consumed, all processes together;
    `hooks_state`: {hook key: state} of the training hooks that keep one (none: no key)."""
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
    if items is not None:
        state["items"] = items
    if hooks_state:
        state["hooks_state"] = hooks_state
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


# Reading.

def read_checkpoint(path: str) -> Dict[str, Any]:
    """Read a checkpoint dict, with one clear error for a missing or unreadable file."""
    state = read_torch_file(path)
    if not isinstance(state, dict) or "model_state" not in state:
        raise CheckpointError(f"{path} is not a checkpoint: it has no 'model_state'")
    return state


def read_torch_file(path: str) -> Any:
    """What `torch.save` wrote at `path`, read as `read_checkpoint` reads it (CRCs checked,
    weights only), whatever its layout: also another project's checkpoint."""
    if not g_pathmgr.exists(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    if g_pathmgr.isdir(path):
        if g_pathmgr.exists(os.path.join(path, SHARDED_RUN_STATE)):  # a sharded checkpoint: its state without tensors
            return read_checkpoint(os.path.join(path, SHARDED_RUN_STATE))
        raise CheckpointError(f"{path} is a folder, not a checkpoint: name a checkpoint file in it (*.pyth)")
    with g_pathmgr.open(path, "rb") as f:
        data = f.read()
    if not data:
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint: empty file (0 bytes; its write never began)")
    if is_safetensors(data):
        try:
            return read_safetensors_checkpoint(path, data)
        except ValueError as error:
            raise CheckpointError(str(error)) from None
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


def read_newest(
    output_dir: str, start_over: bool = False, set_aside_unreadable: bool = False
) -> Optional[Tuple[str, Dict[str, Any]]]:
    """(path, dict) of the newest readable checkpoint of the run in `output_dir`, by
    (epoch, iteration), or None when there is none. A newer file that cannot be read
    (copied half-way, truncated by a full disk, damaged) is skipped with a warning for the
    one before it, and set aside (`set_aside`) when `set_aside_unreadable` (the process that
    owns OUTPUT_DIR), so that it does not pass for the newest one again.

    Raises:
        CheckpointError: every checkpoint there is unreadable, listing them; unless
            `start_over`: then they are set aside and None is returned.
    """
    unreadable: Dict[str, str] = {}
    found = None
    for path in reversed(epoch_checkpoints(output_dir)):
        try:
            found = path, read_checkpoint(path)
            break
        except CheckpointError as error:
            logger.warning("skipping unreadable checkpoint, trying the previous one: %s", error)
            unreadable[path] = str(error)
    if found is None and unreadable and not start_over:
        raise CheckpointError(
            f"every checkpoint in {checkpoint_dir(output_dir)} is unreadable ({len(unreadable)}): "
            f"{', '.join(os.path.basename(path) for path in unreadable)}; their reasons are in the log. Put an intact "
            "checkpoint of this run there, or set TRAIN.AUTO_RESUME_START_OVER True to set them aside and train "
            "from the start"
        )
    if set_aside_unreadable:
        for path in unreadable:
            set_aside(path)
    return found


# Unreadable files: found, set aside, pruned around.

def unreadable_reason(path: str) -> Optional[str]:
    """Why the checkpoint at `path` cannot be read, found without unpickling it (empty, an incomplete
    zip archive, a member failing its CRC, a sharded folder's index missing); None when none is found."""
    if g_pathmgr.isdir(path):
        if not g_pathmgr.exists(os.path.join(path, SHARDED_INDEX)):
            return f"a sharded checkpoint folder without its index {SHARDED_INDEX}"
        path = os.path.join(path, SHARDED_RUN_STATE)
    try:
        with g_pathmgr.open(path, "rb") as f:
            head = f.read(len(ZIP_MAGIC))
            if not head:
                return "empty file"
            if head != ZIP_MAGIC:
                return None  # a legacy torch file: nothing to check without unpickling it
            f.seek(0)
            try:
                with zipfile.ZipFile(f) as archive:
                    member = archive.testzip()
            except zipfile.BadZipFile as error:
                return f"an incomplete zip archive, truncated? ({error})"
    except OSError as error:
        return f"cannot be opened: {error}"
    return None if member is None else f"its member {member} fails its CRC-32 check"


def set_aside(path: str, reason: str = "") -> Optional[str]:
    """Rename an unreadable checkpoint to NAME.unreadable (NAME.unreadable-N when that is
    taken) with a warning naming it (and `reason`, when given); returns the new path, or
    None when it cannot be renamed (then it stays, and is skipped again at the next
    resume). Renamed, not deleted: no resume or pruning takes it for a checkpoint any
    more, and what is left of it stays for whoever wants to look."""
    target, number = f"{path}{UNREADABLE_SUFFIX}", 0
    while g_pathmgr.exists(target):
        number += 1
        target = f"{path}{UNREADABLE_SUFFIX}-{number}"
    because = f": {reason}" if reason else ""
    if not g_pathmgr.mv(path, target):
        logger.warning("unreadable checkpoint %s left where it is: it could not be renamed to %s%s", path, target,
                       because)
        return None
    logger.warning("unreadable checkpoint %s set aside as %s (renamed, not deleted)%s", path, target, because)
    return target


def prune_checkpoints(
    output_dir: str, keep_last: int, written: Optional[str] = None, intact: Optional[Set[str]] = None
) -> List[str]:
    """Delete the epoch checkpoints older than the newest `keep_last` intact ones (0 keeps
    all); checkpoint_best.pyth is never deleted. Returns the deleted paths.

    `written`, the file just written, always stays and counts as one of the kept. The
    others are kept newest first by (epoch, iteration), each checked (`unreadable_reason`)
    before it counts: one that fails is set aside (`set_aside`), so that a damaged file
    never takes the place of a readable one. Those past the kept ones are deleted
    unchecked. `intact`: paths known intact (written or checked by this run), not checked
    again; the checked ones are added to it.
    """
    if keep_last <= 0:
        return []
    intact = set() if intact is None else intact
    paths = epoch_checkpoints(output_dir)
    kept = [path for path in paths if path == written]
    deleted = []
    for path in reversed(paths):
        if path == written:
            continue
        if len(kept) >= keep_last:
            deleted.append(path)
            continue
        reason = None if path in intact else unreadable_reason(path)
        if reason is None:
            intact.add(path)
            kept.append(path)
        else:
            set_aside(path, reason)
    for path in deleted:
        shutil.rmtree(path) if os.path.isdir(path) else g_pathmgr.rm(path)
        intact.discard(path)
    if deleted:
        logger.info("deleted %d old checkpoint(s), keeping the newest %d: %s", len(deleted), keep_last, ", ".join(deleted))
    return deleted


# Generator states.

NUMPY_BIT_GENERATOR = "MT19937"


def capture_rng_state() -> Dict[str, Any]:
    """The states of torch's CPU generator, this process's CUDA device (when there is one),
    numpy's legacy global generator and python's `random`."""
    name, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    state: Dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng_state(state: Dict[str, Any]) -> None:
    """Set the generators to a `capture_rng_state()` result. A CUDA state met without a
    visible GPU is left out with a warning (a GPU run resumed on a CPU cannot draw the same)."""
    torch.set_rng_state(state["torch"])
    numpy = state["numpy"]
    keys = numpy["keys"].numpy().astype(np.uint32)
    np.random.set_state(
        (NUMPY_BIT_GENERATOR, keys, numpy["position"], numpy["has_gauss"], numpy["cached_gaussian"])
    )
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" not in state:
        return
    if torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
    else:
        logger.warning("the checkpoint holds a CUDA generator state but no GPU is visible; it is not restored")
