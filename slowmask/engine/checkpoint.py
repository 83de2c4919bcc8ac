"""Checkpoints in PySlowFast's format: a dict with `model_state`, `optimizer_state`,
`epoch`, `cfg` (the YAML string) and `scaler_state` under mixed precision, saved as
OUTPUT_DIR/checkpoints/checkpoint_epoch_XXXXX.pyth; plus `rng_state` (the global
generators, see `capture_rng_state`) and, in a mid-epoch checkpoint, `iteration` (batches
done) and `items` (the items they consumed, all processes together: the position that holds
when a resumed run changes TRAIN.BATCH_SIZE, see `ResumePoint`).

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

Reads (`read_checkpoint`, `check_finite`) and initializing a model from another run's
checkpoint (`load_pretrained`) live in slowmask/models/pretrained.py, below the engine, so
that a model built from another run's weights (the distillation teacher) needs no engine.

A torch zip checkpoint carries a CRC-32 of each member: `read_checkpoint` checks them
first (`damaged_member`), so a file whose bytes changed after it was written (a disk,
memory or copy error) is refused naming the damaged member, not loaded with its flipped
values.
Legacy (non-zip) torch files carry no checksum and are read unchecked. An unreadable
checkpoint met when resuming or pruning is set aside, renamed NAME.unreadable
(`set_aside`): never deleted, never taken for the newest checkpoint again.

Resuming puts the global random generators back where the interrupted run had them
(`ResumePoint`), so that dropout and drop-path draws continue as in the uninterrupted
run. Data randomness does not depend on them (items draw from generators seeded by
(seed, epoch, index), see slowmask/data/datasets/clip_dataset.py); the model's stochastic layers do.
The state is kept in plain types and tensors, so `torch.load(weights_only=True)` reads it.

A mismatch between a checkpoint and a model is told as a short diff (`state_diff`):
`load_state_dict` reports one line per key, hundreds of lines for a checkpoint of
another architecture (PySlowFast's model-zoo users know the wall of text); here keys are
grouped by module, blocks.N collapsed into ranges, so the diff reads like
"missing: blocks.0-15.attn.rel_pos_{h,w,t} (48)".
"""

import logging
import math
import os
import random
import re
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

import numpy as np
import torch
import yaml
from iopath.common.file_io import g_pathmgr
from torch import Tensor, nn

from slowmask.models.pretrained import (  # noqa: F401  (PRETRAINING_ONLY, load_pretrained, match_state: engine API)
    PRETRAINING_ONLY,
    ZIP_MAGIC,
    CheckpointError,
    check_finite,
    load_pretrained,
    match_state,
    read_checkpoint,
)
from slowmask.utils.output_files import DiskFullError, check_free_space, disk_full_cause, free_bytes, remove_quietly

logger = logging.getLogger(__name__)


CHECKPOINT_DIR = "checkpoints"
BEST_NAME = "checkpoint_best.pyth"
_NAME = re.compile(r"^checkpoint_epoch_(\d{5,})(?:\.iter_(\d{6,}))?\.pyth$")
# The name an unreadable checkpoint is renamed to (with -N appended when it is taken).
UNREADABLE_SUFFIX = ".unreadable"


DISK_FULL_ADVICE = (
    "free space there (delete old checkpoints, or keep fewer with TRAIN.CHECKPOINT_KEEP_LAST) or move OUTPUT_DIR "
    "to a larger disk, then rerun: the run resumes from its last complete checkpoint"
)
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
        g_pathmgr.rm(path)
        intact.discard(path)
    if deleted:
        logger.info("deleted %d old checkpoint(s), keeping the newest %d: %s", len(deleted), keep_last, ", ".join(deleted))
    return deleted


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
    items: Optional[int] = None,
) -> None:
    """Write a checkpoint atomically (temporary file, then rename), with this process's
    generator states. `iteration`: batches of `epoch` done, for a mid-epoch checkpoint;
    `items`: the items of `epoch` those batches consumed, all processes together."""
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


def unreadable_reason(path: str) -> Optional[str]:
    """Why the checkpoint at `path` cannot be read, found without unpickling it (empty,
    an incomplete zip archive, a member failing its CRC); None when none is found."""
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
    (epoch, iteration, rng_state ... : see ResumePoint)."""
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
    load_model_state(path, state["model_state"], model, "To initialize a model from another run's weights "
                     "(fine-tuning), set TRAIN.CHECKPOINT_EPOCH_RESET True")
    if optimizer is not None and state.get("optimizer_state") is not None:
        optimizer.load_state_dict(state["optimizer_state"])
    if scaler is not None and state.get("scaler_state") is not None:
        scaler.load_state_dict(state["scaler_state"])
    within = f"after iteration {state['iteration']}" if "iteration" in state else "at its end"
    logger.info("resumed from %s (epoch %d, %s)", path, state["epoch"] + 1, within)


class WeightsMismatchError(CheckpointError):
    """A checkpoint whose model_state has other names or shapes than the model's."""


def load_model_state(path: str, model_state: Dict[str, Tensor], model: nn.Module, fix: str) -> None:
    """Put `model_state` (read from `path`) into `model` with strict names; a mismatch is a
    WeightsMismatchError with the grouped diff (`state_diff`) and `fix`, the advice that fits
    the caller (the raw error has a line per key)."""
    try:
        unwrapped(model).load_state_dict(model_state, strict=True)
    except RuntimeError:
        diff = state_diff(model_state, unwrapped(model).state_dict())
        raise WeightsMismatchError(f"{path} does not fit this model:\n{diff.summary()}\n{fix}") from None


def load_weights(path: str, model: nn.Module, fix: str = "use the config the checkpoint was trained with") -> None:
    """Put the model_state of the checkpoint at `path` into `model` for a tool that uses
    the trained weights (no optimizer, nothing resumed): strict names, finite values;
    `fix` is the advice a mismatch ends with."""
    state = read_checkpoint(path)
    check_finite(path, state["model_state"])
    load_model_state(path, state["model_state"], model, fix)
    taken = f"epoch {int(state['epoch']) + 1}" if "epoch" in state else ""
    if taken and state.get("iteration") is not None:
        taken += f", after iteration {state['iteration']}"
    logger.info("loaded weights from %s%s", path, f" ({taken})" if taken else "")


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


# Where a run resumes.

@dataclass(frozen=True)
class ResumePoint:
    """The next batch to run: batch number `iteration` of 0-based `epoch` (those before it
    are done). `rng_state`: the global generators at that moment (None: a fresh run, or a
    checkpoint written without them, e.g. by PySlowFast). `items`: the items of `epoch`
    consumed so far, all processes together; the position that holds when TRAIN.BATCH_SIZE
    changes on resuming (`in_batches_of`). None: unknown (a checkpoint with neither `items`
    nor its batch size), `iteration` batches of the current size."""

    epoch: int = 0
    iteration: int = 0
    rng_state: Optional[Dict[str, Any]] = None
    items: Optional[int] = None

    @classmethod
    def after(cls, state: Optional[Dict[str, Any]]) -> "ResumePoint":
        """The point after a loaded checkpoint dict (None: the start of training). An
        end-of-epoch checkpoint has no `iteration`: the run goes on at the next epoch. A
        mid-epoch one written before `items` was stored counts them from its batches and
        the TRAIN.BATCH_SIZE of its config."""
        if state is None:
            return cls()
        if state.get("iteration") is None:
            return cls(int(state["epoch"]) + 1, 0, state.get("rng_state"))
        iteration, items = int(state["iteration"]), state.get("items")
        if items is None:
            batch_size = stored_batch_size(state.get("cfg"))
            items = None if batch_size is None else iteration * batch_size
        return cls(int(state["epoch"]), iteration, state.get("rng_state"), items)

    def in_batches_of(self, batch_size: int, epoch_items: int) -> "ResumePoint":
        """This point with `iteration` counted in batches of `batch_size` items, in an epoch
        of `epoch_items` (both all processes together): the remaining items make whole
        batches that end the epoch at its last batch number, so the items consumed before
        are neither run again nor skipped (but for the part of a batch the epoch drops at
        its end, as ever)."""
        if self.items is None:
            return self
        first = epoch_items // batch_size - (epoch_items - self.items) // batch_size
        return replace(self, iteration=first)

    def batches_done(self, epoch: int) -> int:
        """Batches of `epoch` already run: `iteration` for the resumed epoch, else 0."""
        return self.iteration if epoch == self.epoch else 0

    def items_done(self, epoch: int, batch_size: int) -> int:
        """Items of `epoch` (all processes) consumed before the run starts it: `items` for
        the resumed epoch (or `iteration` batches of `batch_size` when unknown), else 0."""
        if epoch != self.epoch:
            return 0
        return self.iteration * batch_size if self.items is None else self.items

    def items_after(self, epoch: int, batches: int, batch_size: int) -> int:
        """Items of `epoch` (all processes) consumed once its batch number `batches` is
        done, batches holding `batch_size` items: what a checkpoint written then stores."""
        return self.items_done(epoch, batch_size) + (batches - self.batches_done(epoch)) * batch_size

    def restore_generators(self) -> None:
        """Put the global generators where the interrupted run had them (no-op without)."""
        if self.rng_state is not None:
            restore_rng_state(self.rng_state)


def stored_batch_size(cfg_yaml: Optional[str]) -> Optional[int]:
    """TRAIN.BATCH_SIZE of a checkpoint's stored config, or None when it has none."""
    try:
        stored = yaml.safe_load(cfg_yaml) if cfg_yaml else None
    except yaml.YAMLError:
        return None
    train = stored.get("TRAIN") if isinstance(stored, dict) else None
    size = train.get("BATCH_SIZE") if isinstance(train, dict) else None
    return size if isinstance(size, int) and size > 0 else None


# The difference between a checkpoint's state and a model's.

Shape = Tuple[int, ...]
_INDEX = re.compile(r"\.(\d+)(?=\.|$)")


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
                parts.append(f"{title} ({len(keys)}):\n" + _grouped(keys, max_lines))
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
        return _grouped(list(self.shape), max_lines) + "\n  e.g.\n" + "\n".join(lines[:examples])


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


def _ranges(indices: Sequence[int]) -> str:
    """[0, 1, 2, 5, 7, 8] -> "0-2,5,7-8"."""
    values = sorted(set(indices))
    spans: List[List[int]] = []
    for value in values:
        if spans and value == spans[-1][1] + 1:
            spans[-1][1] = value
        else:
            spans.append([value, value])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def _grouped(keys: Sequence[str], max_lines: int) -> str:
    """One line per module pattern: numeric indices collapsed into ranges, and the
    parameter names of one module joined, e.g. "blocks.0-15.attn.{rel_pos_h,rel_pos_w}"."""
    by_pattern: Dict[str, List[Tuple[int, ...]]] = defaultdict(list)
    for key in keys:
        by_pattern[_INDEX.sub(".#", key)].append(tuple(int(i) for i in _INDEX.findall(key)))
    by_module: Dict[str, List[str]] = defaultdict(list)
    for pattern, index_sets in by_pattern.items():
        columns = list(zip(*index_sets))
        filled = pattern
        for column in columns:
            filled = filled.replace("#", "{" + _ranges(column) + "}" if len(set(column)) > 1 else str(column[0]), 1)
        module, _, leaf = filled.rpartition(".")
        by_module[(module, len(index_sets))].append(leaf)
    lines = []
    for (module, count), leaves in sorted(by_module.items()):
        names = leaves[0] if len(leaves) == 1 else "{" + ",".join(sorted(leaves)) + "}"
        lines.append(f"  {module + '.' if module else ''}{names} ({count * len(leaves)})")
    if len(lines) > max_lines:
        lines = lines[:max_lines] + [f"  ... and {len(lines) - max_lines} more modules"]
    return "\n".join(lines)
