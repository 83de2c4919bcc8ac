"""Sharded checkpoints: the checkpoint of a run whose processes each hold a part of the
model (TRAIN.SHARDING fsdp / hsdp), written by every rank, read back on any number of
processes, and consolidated into a plain `.pyth`.

A sharded checkpoint is a folder named as the file would be, without ".pyth"
(files.checkpoint_path(..., sharded=True)), holding

- torch.distributed.checkpoint's files: each rank's shards of `model_state` (slowmask's
  names, as in a `.pyth`) and of the optimizer's per-parameter state (`exp_avg`, `step` ...
  keyed by parameter name), and the index `.metadata` that says which rank wrote which
  part of which tensor; no rank ever holds the whole model;
- `run_state.pyth` (files.SHARDED_RUN_STATE), written by rank 0: the checkpoint dict of a
  `.pyth` without tensors of the model (`model_state` empty): `epoch`, `cfg`, `rng_state`,
  `hooks_state`, `iteration` / `items`, and the optimizer's `param_groups` (parameter
  names in place of indices).

Only tensors go through torch.distributed.checkpoint, whose reader unpickles other
objects without `weights_only`; everything else is in `run_state.pyth`, read like any
checkpoint (`torch.load(weights_only=True)`).

The folder is written as `NAME.tmp-PID` (PID of rank 0) and renamed by rank 0 once every
rank's files and the index are complete: a folder under a checkpoint's name is complete,
as a file is (utils/output_files.py removes the temporaries of a killed run).

Reading: `load_sharded_checkpoint` puts a folder into a model and optimizer on any number
of processes, sharded or not (torch.distributed.checkpoint reshards: a folder written by 2
processes resumes on 1); `read_sharded_checkpoint` returns the whole checkpoint dict of a
`.pyth` in one process without a process group, and `consolidate_checkpoint` writes it as
one (`tools/convert.py`'s input).
"""

import logging
import os
import shutil
import warnings
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from iopath.common.file_io import g_pathmgr
from torch import Tensor, nn
from torch.distributed.checkpoint.metadata import TensorStorageMetadata
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_optimizer_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.tensor import DTensor, distribute_tensor

from slowmask.utils.output_files import DiskFullError, check_free_space, disk_full_cause, free_bytes

from .files import (
    DISK_FULL_ADVICE,
    SHARDED_RUN_STATE,
    CheckpointError,
    capture_rng_state,
    read_checkpoint,
    unreadable_reason,
    unwrapped,
)

logger = logging.getLogger(__name__)

MODEL_KEY = "model_state"
OPTIMIZER_KEY = "optimizer_state"


def is_sharded_checkpoint(path: str) -> bool:
    """Whether `path` is a sharded checkpoint folder (it holds a run state)."""
    return g_pathmgr.isdir(path) and g_pathmgr.exists(os.path.join(path, SHARDED_RUN_STATE))


def _is_main() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def _any_rank(flag: bool) -> bool:
    """True on every rank when `flag` is True on any (one all-reduce in a job)."""
    if not dist.is_initialized():
        return flag
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    value = torch.tensor([float(flag)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def _local_bytes(value: Any) -> int:
    """Bytes of this rank's part of the tensors in a nested dict (a DTensor's local shard)."""
    if isinstance(value, DTensor):
        value = value.to_local()
    if isinstance(value, Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_local_bytes(item) for item in value.values())
    return 0


def _check_room(path: str, tensors: Dict[str, Any]) -> None:
    """Each rank checks the free space for its shards before any writes; when one lacks it,
    every rank stops with a DiskFullError (none waits in the write for the others)."""
    needed = _local_bytes(tensors)
    g_pathmgr.mkdirs(os.path.dirname(path))
    short: Optional[DiskFullError] = None
    try:
        check_free_space(path, needed, DISK_FULL_ADVICE)
    except DiskFullError as error:
        short = error
    if _any_rank(short is not None):
        raise short or DiskFullError(path, needed, free_bytes(os.path.dirname(path)),
                                     "another rank lacks room for its shards: " + DISK_FULL_ADVICE)


def _main_pid() -> int:
    """Rank 0's process id on every rank: the temporary folder's name is rank 0's."""
    pid = [os.getpid()]
    if dist.is_initialized():
        dist.broadcast_object_list(pid, src=0)
    return int(pid[0])


# Writing.

def save_sharded_checkpoint(
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
    """Write the checkpoint folder `path` from every rank (a collective: all ranks call
    it), atomically; arguments as files.save_checkpoint's. `hooks_state` and the
    generator states stored are rank 0's."""
    model = unwrapped(model)
    temporary = f"{path}.tmp-{_main_pid()}"
    tensors: Dict[str, Any] = {MODEL_KEY: model.state_dict()}
    groups = None
    if optimizer is not None:
        optimizer_state = get_optimizer_state_dict(model, optimizer)
        tensors[OPTIMIZER_KEY] = {"state": optimizer_state["state"]}
        groups = optimizer_state["param_groups"]
    _check_room(path, tensors)
    failed: Optional[Exception] = None
    try:
        _write_folder(temporary, path, tensors, lambda folder: _write_run_state(
            folder, epoch, cfg_yaml, groups, scaler, iteration, items, hooks_state))
    except Exception as error:  # agreed below, so that no rank waits for one that failed
        failed = error
    # One all-reduce: every rank learns the outcome, and none goes on before the folder is in place.
    if _any_rank(failed is not None):
        if failed is None:
            raise CheckpointError(f"rank 0 could not complete the checkpoint {path}: see its log")
        full = disk_full_cause(failed) or next(filter(None, map(disk_full_cause, _failures(failed))), None)
        if full is not None:
            raise DiskFullError(path, _local_bytes(tensors), free_bytes(os.path.dirname(path)), DISK_FULL_ADVICE) \
                from failed
        raise failed
    logger.info("wrote sharded checkpoint %s", path)


def _write_folder(temporary: str, path: str, tensors: Dict[str, Any], write_run_state: Callable[[str], None]) -> None:
    """Every rank's shards into `temporary` (a collective), then, on rank 0, the run state
    and the rename to `path`; a failed or killed write leaves no partial folder."""
    try:
        with _single_process_intended():
            dcp.save(tensors, checkpoint_id=temporary, no_dist=not dist.is_initialized())
        if _is_main():
            write_run_state(temporary)
            _replace_folder(temporary, path)
    except BaseException:
        if _is_main():
            shutil.rmtree(temporary, ignore_errors=True)
        raise


def _failures(error: BaseException) -> List[BaseException]:
    """The ranks' own errors inside torch.distributed.checkpoint's CheckpointException."""
    failures = getattr(error, "failures", None)
    return [failure for failure in failures.values() if isinstance(failure, BaseException)] if failures else []


def _write_run_state(
    folder: str, epoch: int, cfg_yaml: str, param_groups: Optional[List[Dict[str, Any]]], scaler: Optional[Any],
    iteration: Optional[int], items: Optional[int], hooks_state: Optional[Dict[str, Any]],
) -> None:
    """SHARDED_RUN_STATE in `folder`: the keys of files.save_checkpoint's dict, with an empty
    `model_state` and, of the optimizer's state, its `param_groups` (the tensors are shards)."""
    state: Dict[str, Any] = {
        "epoch": epoch,
        "model_state": {},
        "optimizer_state": None if param_groups is None else {"param_groups": param_groups},
        "cfg": cfg_yaml,
        "rng_state": capture_rng_state(),
    }
    optional = {"scaler_state": scaler.state_dict() if scaler is not None else None, "iteration": iteration,
                "items": items, "hooks_state": hooks_state or None}
    state.update({key: value for key, value in optional.items() if value is not None})
    torch.save(state, os.path.join(folder, SHARDED_RUN_STATE))


def _replace_folder(temporary: str, path: str) -> None:
    """Rename the complete `temporary` folder to `path` (replacing an older folder there)."""
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.replace(temporary, path)


# Reading into a model, on any number of processes.

def sharded_model_shapes(path: str) -> Dict[str, Tuple[int, ...]]:
    """{name: whole shape} of the model tensors in the checkpoint folder `path`."""
    prefix = MODEL_KEY + "."
    return {key[len(prefix):]: tuple(meta.size) for key, meta in _index(path).items()
            if key.startswith(prefix) and isinstance(meta, TensorStorageMetadata)}


def _index(path: str) -> Dict[str, Any]:
    """torch.distributed.checkpoint's index of the folder: flat key -> storage metadata."""
    reason = unreadable_reason(path)
    if reason is not None:
        raise CheckpointError(f"{path} is not a readable sharded checkpoint: {reason}")
    return dcp.FileSystemReader(path).read_metadata().state_dict_metadata


def load_sharded_checkpoint(path: str, model: nn.Module, optimizer: Optional[torch.optim.Optimizer] = None) -> None:
    """Put the checkpoint folder `path` into `model` (sharded by fully_shard or whole) and
    `optimizer`: every rank of the job calls it; the shards are read and resharded to the
    model's (torch.distributed.checkpoint). The names must agree (see
    sharded_model_shapes to compare first)."""
    model = unwrapped(model)
    targets: Dict[str, Any] = {MODEL_KEY: model.state_dict()}
    groups = read_checkpoint(path).get("optimizer_state") if optimizer is not None else None
    if groups is not None:
        # The optimizer's own state dict names its tensors (a fresh optimizer's are
        # created here), so that the stored ones are loaded into them.
        optimizer_state = get_optimizer_state_dict(model, optimizer)
        targets[OPTIMIZER_KEY] = {"state": optimizer_state["state"]}
    _quietly_load(targets, path)
    model.load_state_dict(targets[MODEL_KEY], strict=True)
    if groups is not None:
        set_optimizer_state_dict(model, optimizer, {"state": targets[OPTIMIZER_KEY]["state"], **groups})
    elif optimizer is not None:
        logger.warning("%s holds no optimizer state: the optimizer starts afresh", path)


@contextmanager
def _single_process_intended() -> Iterator[None]:
    """Without a process group torch warns that it reads or writes in one process, which
    is what is meant then (a tool, a run of one process)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*assuming the intent is to (load|save) in a single process")
        yield


def _quietly_load(targets: Dict[str, Any], path: str, collective: bool = True) -> None:
    """dcp.load into `targets`, in place (whole tensors or the shards of DTensors): with
    every rank of the job when `collective` and there is a job, else by this process alone."""
    with _single_process_intended():
        try:
            dcp.load(targets, checkpoint_id=path, no_dist=not (collective and dist.is_initialized()))
        except (RuntimeError, ValueError, dcp.CheckpointException) as error:
            raise CheckpointError(f"{path} could not be read into this model: {error}") from error


# Reading whole, in one process.

def read_sharded_checkpoint(path: str) -> Dict[str, Any]:
    """The checkpoint dict of a `.pyth` (files.py's format) from the folder `path`: the whole
    tensors, read by this process alone (in a job or not). The optimizer's state is numbered
    as torch's optimizer.state_dict() numbers it (parameters in the order of its groups),
    so that it loads into the same optimizer built for a whole model."""
    state = read_checkpoint(path)
    whole = _read_whole(path)
    state[MODEL_KEY] = whole.get(MODEL_KEY, {})
    groups = state.get("optimizer_state")
    if groups is not None:
        state["optimizer_state"] = _numbered(whole.get(OPTIMIZER_KEY, {}).get("state", {}), groups["param_groups"])
    return state


def _read_whole(path: str) -> Dict[str, Any]:
    """Every tensor of the folder, whole, nested as written ({"model_state": {...}, ...})."""
    index = _index(path)
    flat = {key: torch.empty(meta.size, dtype=meta.properties.dtype)
            for key, meta in index.items() if isinstance(meta, TensorStorageMetadata)}
    _quietly_load(flat, path, collective=False)  # each process reads all: no rank waits for another
    paths = dcp.FileSystemReader(path).read_metadata().planner_data or {}
    nested: Dict[str, Any] = {}
    for key, tensor in flat.items():
        where = paths.get(key, tuple(key.split(".", 1)))
        node = nested
        for part in where[:-1]:
            node = node.setdefault(part, {})
        node[where[-1]] = tensor
    return nested


def _numbered(by_name: Dict[str, Dict[str, Tensor]], groups: List[Dict[str, Any]]) -> Dict[str, Any]:
    """An optimizer state keyed by parameter name (torch.distributed.checkpoint's) as torch's
    optimizer.state_dict(): parameters numbered in the order of the groups' `params`."""
    numbers: Dict[str, int] = {}
    numbered_groups = []
    for group in groups:
        indices = [numbers.setdefault(name, len(numbers)) for name in group["params"]]
        numbered_groups.append({**group, "params": indices})
    state = {numbers[name]: value for name, value in by_name.items() if name in numbers}
    return {"state": state, "param_groups": numbered_groups}


def load_numbered_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer, state: Dict[str, Any]) -> None:
    """A `.pyth`'s optimizer state (whole tensors, numbered as torch's optimizer.state_dict())
    into the `optimizer` of a sharded `model`, each rank keeping its shards: what a run
    started without sharding needs to go on under it. Every rank calls it."""
    model = unwrapped(model)
    names = [name for group in get_optimizer_state_dict(model, optimizer)["param_groups"] for name in group["params"]]
    named = {
        "state": {names[index]: value for index, value in state["state"].items()},
        "param_groups": [{**group, "params": [names[index] for index in group["params"]]}
                         for group in state["param_groups"]],
    }
    set_optimizer_state_dict(model, optimizer, named, options=StateDictOptions(full_state_dict=True))


def read_any_checkpoint(path: str) -> Dict[str, Any]:
    """The checkpoint dict at `path`, a `.pyth` file or a sharded folder read whole
    (read_sharded_checkpoint): what a tool that uses a run's weights reads."""
    return read_sharded_checkpoint(path) if is_sharded_checkpoint(path) else read_checkpoint(path)


def consolidate_checkpoint(folder: str, output_path: str) -> str:
    """Write the sharded checkpoint `folder` as one `.pyth` at `output_path` (in this
    process, no process group; atomically), loadable wherever a run's checkpoint file is:
    model, optimizer (numbered as a whole model's), epoch, config, generators and hooks'
    states. Returns `output_path`."""
    if not is_sharded_checkpoint(folder):
        raise CheckpointError(f"{folder} is not a sharded checkpoint folder (it holds no {SHARDED_RUN_STATE})")
    state = read_sharded_checkpoint(folder)
    g_pathmgr.mkdirs(os.path.dirname(os.path.abspath(output_path)))
    temporary = f"{output_path}.tmp-{os.getpid()}"
    try:
        torch.save(state, temporary)
        os.replace(temporary, output_path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    logger.info("consolidated %s into %s (%d model tensors)", folder, output_path, len(state[MODEL_KEY]))
    return output_path


def placed_like(state: Dict[str, Tensor], model: nn.Module) -> Dict[str, Tensor]:
    """`state`'s whole tensors placed as `model`'s are: cut into the model's shards where
    it is sharded (every rank calls this with the same tensors), as they are elsewhere;
    so that `load_state_dict` takes a `.pyth`'s weights into a sharded model."""
    own = unwrapped(model).state_dict()
    placed = {}
    for name, value in state.items():
        target = own.get(name)
        if isinstance(target, DTensor) and not isinstance(value, DTensor):
            value = distribute_tensor(value.to(target.dtype), target.device_mesh, target.placements)
        placed[name] = value
    return placed
