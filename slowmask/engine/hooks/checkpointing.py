"""PeriodicCheckpoint: the run's checkpoints, every TRAIN.CHECKPOINT_PERIOD epochs and
TRAIN.CHECKPOINT_PERIOD_ITERS iterations, with the hooks' states, old ones pruned.
"""

from typing import Any, Callable, Dict, Optional, Set

import torch
from torch import nn

from slowmask import checkpoint

from ..loop import Hook, TrainLoop


# (0-based epoch, batches done or None at the epoch's end) -> path of the checkpoint written.
SaveCheckpoint = Callable[[int, Optional[int]], str]


class PeriodicCheckpoint(Hook):
    """Writes OUTPUT_DIR/checkpoints/checkpoint_epoch_{epoch+1:05d}.pyth every `period`
    epochs and after the last one; with `iter_period` > 0 also
    checkpoint_epoch_{epoch+1:05d}.iter_{iteration:06d}.pyth every `iter_period`
    iterations within an epoch (while gradients are being accumulated, at the next
    optimizer update). The stored `epoch` is the 0-based index of the epoch (for an
    end-of-epoch file the finished one, PySlowFast's convention); a mid-epoch file also
    stores the items consumed, `items_after(epoch, batches done)`, when given. After each
    write only the newest `keep_last` such files are kept (0: all; checkpoint_best.pyth
    stays): the one just written and the newest intact others (see
    checkpoint.prune_checkpoints). `hooks_state`, when given, returns the hooks' states
    ({state_key: state}, loop.hook_states) stored with each checkpoint. `sharded`: the
    checkpoints are folders that every rank writes its shards into
    (checkpoint.save_sharded_checkpoint): every rank has this hook; `prunes` on one of
    them (the main process)."""

    def __init__(
        self,
        output_dir: str,
        period: int,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        cfg_yaml: str,
        scaler: Optional[Any] = None,
        iter_period: int = 0,
        keep_last: int = 0,
        items_after: Optional[Callable[[int, int], int]] = None,
        hooks_state: Optional[Callable[[], Dict[str, Dict[str, Any]]]] = None,
        sharded: bool = False,
        prunes: bool = True,
    ) -> None:
        self.output_dir = output_dir
        self.period = period
        self.model = model
        self.optimizer = optimizer
        self.cfg_yaml = cfg_yaml
        self.scaler = scaler
        self.iter_period = iter_period
        self.keep_last = keep_last
        self.items_after = items_after
        self.hooks_state = hooks_state
        self.sharded = sharded
        self.prunes = prunes
        self.write = checkpoint.save_sharded_checkpoint if sharded else checkpoint.save_checkpoint
        self.intact: Set[str] = set()  # checkpoints this run wrote or found intact when pruning
        self._due = False

    def save(self, epoch: int, iteration: Optional[int] = None) -> str:
        """Write the checkpoint of 0-based `epoch` (at its end, or after `iteration`
        batches), prune old ones; returns its path."""
        path = checkpoint.checkpoint_path(self.output_dir, epoch + 1, iteration, self.sharded)
        items = None if iteration is None or self.items_after is None else self.items_after(epoch, iteration)
        hooks_state = self.hooks_state() if self.hooks_state is not None else None
        self.write(
            path, self.model, self.optimizer, epoch, self.cfg_yaml, self.scaler, iteration=iteration, items=items,
            hooks_state=hooks_state,
        )
        self.intact.add(path)
        if self.prunes:
            checkpoint.prune_checkpoints(self.output_dir, self.keep_last, path, self.intact)
        return path

    def before_epoch(self, loop: TrainLoop) -> None:
        self._due = False

    def after_step(self, loop: TrainLoop) -> None:
        done = loop.iteration + 1
        if self.iter_period and done % self.iter_period == 0:
            self._due = True
        # The epoch's last batch is left to after_epoch; an update still pending is not saved.
        if not self._due or done == loop.iters_per_epoch or _pending(loop):
            return
        self._due = False
        _check_losses(loop)
        self.save(loop.epoch, done)

    def after_epoch(self, loop: TrainLoop) -> None:
        finished = loop.epoch + 1
        if finished % self.period and finished != loop.max_epoch:
            return
        _check_losses(loop)
        self.save(loop.epoch)


def _check_losses(loop: TrainLoop) -> None:
    """On a GPU the step reads its losses one step late: every one is read before weights
    are saved, so that no checkpoint holds an update made from a non-finite loss."""
    check = getattr(loop.step, "raise_if_nonfinite", None)
    if check is not None:
        check()


def _pending(loop: TrainLoop) -> bool:
    """Gradients accumulated for an optimizer update that has not happened yet."""
    return bool(getattr(loop.step, "pending_gradients", False))
