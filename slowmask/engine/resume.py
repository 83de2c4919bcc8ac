"""Where a training run resumes, and putting a checkpoint's states back.

A run resumes from its own newest checkpoint (TRAIN.AUTO_RESUME) or from the one
TRAIN.CHECKPOINT_FILE_PATH names: model, optimizer and scaler states are loaded
(`load_states`, strict names, finite weights), and `ResumePoint` says which batch runs
next. The checkpoint files themselves (names, reading, writing) are slowmask/checkpoint's.

Resuming puts the global random generators back where the interrupted run had them
(`ResumePoint.restore_generators`), so that dropout and drop-path draws continue as in
the uninterrupted run. Data randomness does not depend on them (items draw from
generators seeded by (seed, epoch, index), see slowmask/data/datasets/clip_dataset.py); the
model's stochastic layers do. The hooks that keep a state (a Hook's `state_dict`) get it
back too (`ResumePoint.restore_hooks`); a checkpoint written without `hooks_state` (an
older one, PySlowFast's) resumes with fresh hooks, as before.
"""

import logging
from dataclasses import dataclass, replace
from typing import Any, Dict, Optional, Sequence

import torch
import yaml
from torch import nn
from torch.distributed.tensor import DTensor

from slowmask.checkpoint import (
    CheckpointError,
    WeightsMismatchError,
    check_finite,
    is_sharded_checkpoint,
    load_model_state,
    load_numbered_optimizer_state,
    load_sharded_checkpoint,
    read_checkpoint,
    read_newest,
    restore_rng_state,
    sharded_model_shapes,
    state_diff,
    unwrapped,
)

from .loop import Hook, load_hook_states
from .sharding import is_sharded

RESUME_FIX = "To initialize a model from another run's weights (fine-tuning), set TRAIN.CHECKPOINT_EPOCH_RESET True"

logger = logging.getLogger(__name__)


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
    if "epoch" not in state:  # weights exported without a run (tools/export.py --format pyth-safe)
        raise CheckpointError(
            f"{path} holds weights but no epoch: a run cannot resume from it; to initialize a model from it "
            "(fine-tuning), set TRAIN.CHECKPOINT_EPOCH_RESET True"
        )
    if optimizer is not None and state.get("optimizer_state") is None:
        logger.warning("%s holds weights but no optimizer state: the run goes on from its epoch with a fresh "
                       "optimizer (moments and step counts from zero)", path)
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


def load_states(
    path: str,
    state: Dict[str, Any],
    model: nn.Module,
    optimizer: Optional[torch.optim.Optimizer],
    scaler: Optional[Any],
) -> None:
    """Put a checkpoint dict read from `path` into model, optimizer and scaler
    (strict names; weights that are not finite refused, see check_finite). A sharded
    checkpoint folder (`state` its run state) is read by every rank into a model sharded
    or whole, on any number of processes (checkpoint.load_sharded_checkpoint)."""
    model = unwrapped(model)
    if is_sharded_checkpoint(path):
        _load_sharded(path, model, optimizer)
    else:
        check_finite(path, state["model_state"])
        load_model_state(path, state["model_state"], model, RESUME_FIX)
        if optimizer is not None and state.get("optimizer_state") is not None:
            _load_optimizer_file_state(state["optimizer_state"], model, optimizer)
    if scaler is not None and state.get("scaler_state") is not None:
        scaler.load_state_dict(state["scaler_state"])
    within = f"after iteration {state['iteration']}" if "iteration" in state else "at its end"
    logger.info("resumed from %s (epoch %d, %s)", path, state["epoch"] + 1, within)


def _load_sharded(path: str, model: nn.Module, optimizer: Optional[torch.optim.Optimizer]) -> None:
    """The folder `path` into `model` and `optimizer`, after comparing names and shapes (a
    WeightsMismatchError with the grouped diff); weights not finite refused (each rank
    checks its shards)."""
    stored = {name: torch.empty(shape, device="meta") for name, shape in sharded_model_shapes(path).items()}
    diff = state_diff(stored, model.state_dict())
    if diff:
        raise WeightsMismatchError(f"{path} does not fit this model:\n{diff.summary()}\n{RESUME_FIX}")
    load_sharded_checkpoint(path, model, optimizer)
    local = {name: value.to_local() if isinstance(value, DTensor) else value
             for name, value in model.state_dict().items()}
    check_finite(path, local)


def _load_optimizer_file_state(optimizer_state: Dict[str, Any], model: nn.Module,
                               optimizer: torch.optim.Optimizer) -> None:
    """A `.pyth`'s optimizer state into `optimizer`; cut into the shards of a sharded
    model's (a run written without sharding goes on with it)."""
    if is_sharded(model):
        load_numbered_optimizer_state(model, optimizer, optimizer_state)
    else:
        optimizer.load_state_dict(optimizer_state)


# Where a run resumes.

@dataclass(frozen=True)
class ResumePoint:
    """The next batch to run: batch number `iteration` of 0-based `epoch` (those before it
    are done). `rng_state`: the global generators at that moment (None: a fresh run, or a
    checkpoint written without them, e.g. by PySlowFast). `items`: the items of `epoch`
    consumed so far, all processes together; the position that holds when TRAIN.BATCH_SIZE
    changes on resuming (`in_batches_of`). None: unknown (a checkpoint with neither `items`
    nor its batch size), `iteration` batches of the current size. `hooks_state`: the
    hooks' states at that moment ({state_key: state}; None: a fresh run, or a checkpoint
    written without them)."""

    epoch: int = 0
    iteration: int = 0
    rng_state: Optional[Dict[str, Any]] = None
    items: Optional[int] = None
    hooks_state: Optional[Dict[str, Dict[str, Any]]] = None

    @classmethod
    def after(cls, state: Optional[Dict[str, Any]]) -> "ResumePoint":
        """The point after a loaded checkpoint dict (None: the start of training). An
        end-of-epoch checkpoint has no `iteration`: the run goes on at the next epoch. A
        mid-epoch one written before `items` was stored counts them from its batches and
        the TRAIN.BATCH_SIZE of its config."""
        if state is None:
            return cls()
        if state.get("iteration") is None:
            return cls(int(state["epoch"]) + 1, 0, state.get("rng_state"), hooks_state=state.get("hooks_state"))
        iteration, items = int(state["iteration"]), state.get("items")
        if items is None:
            batch_size = stored_batch_size(state.get("cfg"))
            items = None if batch_size is None else iteration * batch_size
        return cls(int(state["epoch"]), iteration, state.get("rng_state"), items, state.get("hooks_state"))

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

    def restore_hooks(self, hooks: Sequence[Hook], warn_unclaimed: bool = True) -> None:
        """Hand the hooks the states the interrupted run had (no-op without). A state no
        hook of `hooks` takes (the hook is off in this config) is left out with a warning
        naming it, when `warn_unclaimed` (the main process, which has every hook that
        writes; the other ranks lack the main process's own hooks)."""
        if not self.hooks_state:
            return
        unclaimed = load_hook_states(hooks, self.hooks_state)
        if unclaimed and warn_unclaimed:
            logger.warning("the checkpoint holds the state of hook(s) this run does not have, not restored: %s",
                           ", ".join(unclaimed))


def stored_batch_size(cfg_yaml: Optional[str]) -> Optional[int]:
    """TRAIN.BATCH_SIZE of a checkpoint's stored config, or None when it has none."""
    try:
        stored = yaml.safe_load(cfg_yaml) if cfg_yaml else None
    except yaml.YAMLError:
        return None
    train = stored.get("TRAIN") if isinstance(stored, dict) else None
    size = train.get("BATCH_SIZE") if isinstance(train, dict) else None
    return size if isinstance(size, int) and size > 0 else None
