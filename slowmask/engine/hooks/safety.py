"""The hooks that stop a run going wrong, with one line and its exit status: skipped
non-finite steps logged (NonFiniteSkipLog) and counted (NonFiniteSkipStop), an exploding
loss (LossExplosionStop), too many unreadable videos (BadDataGuard).
"""

import logging
from collections import deque
from typing import Any, Deque, Dict, List, Tuple

from slowmask.utils.errors import SlowmaskError
from slowmask.utils.logging import write_json_stats

from ..loop import Hook, TrainLoop

logger = logging.getLogger(__name__)


# Unreadable files quoted in a BadDataError.
BAD_DATA_EXAMPLES = 5


# Non-finite losses.

class NonFiniteSkipLog(Hook):
    """Logs each step skipped for a non-finite loss (metric `nonfinite_skip` 1) with its
    epoch and iteration, as a warning and a JSON line, and the list at the end: of the
    whole run, the steps skipped before a resume included (its state)."""

    def __init__(self, output_dir: str) -> None:
        self.output_dir = output_dir
        self.skipped: List[Tuple[int, int]] = []  # (epoch, iteration), 1-based

    def after_step(self, loop: TrainLoop) -> None:
        if loop.metrics.get("nonfinite_skip", 0.0) < 1.0:
            return
        self.skipped.append((loop.epoch + 1, loop.iteration + 1))
        logger.warning(
            "skipped the step at epoch %d, iteration %d: the loss is not finite (%d skipped so far)",
            loop.epoch + 1, loop.iteration + 1, len(self.skipped),
        )
        write_json_stats(self.output_dir, {
            "_type": "nonfinite_skip", "epoch": loop.epoch + 1, "iter": loop.iteration + 1,
        })

    def state_dict(self) -> Dict[str, Any]:
        """The steps skipped so far, so that a resumed run's list and count go on."""
        return {"skipped": [list(where) for where in self.skipped]} if self.skipped else {}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.skipped = [(int(epoch), int(iteration)) for epoch, iteration in state["skipped"]]

    def after_train(self, loop: TrainLoop) -> None:
        if self.skipped:
            where = ", ".join(f"epoch {e} iteration {i}" for e, i in self.skipped)
            logger.warning("skipped %d step(s) with a non-finite loss: %s", len(self.skipped), where)


class TooManySkippedSteps(SlowmaskError, RuntimeError):
    """More than TRAIN.NONFINITE_SKIP_MAX_SHARE of an epoch's steps, or all of them, were
    skipped for a non-finite loss."""

    kind = "training"


class NonFiniteSkipStop(Hook):
    """Stops the run (TooManySkippedSteps, exit status 7) when more than `max_share` of
    an epoch's steps are skipped for a non-finite loss (metric `nonfinite_skip` 1), or
    every one of them: skipping a rare bad batch keeps a long run alive, skipping most of
    them trains nothing while the run would end "finished".

    The share is of the steps the epoch runs (for an epoch resumed part-way, the steps
    after the resume), so no minimum count of steps is needed: checked after each step
    against that fixed total, the share can only grow, and the run stops at the first
    step where the end-of-epoch check is certain to fail. Runs on every rank after the
    rank means: the ranks agree on each skip (see TrainStep), so all stop at one step.

    Args:
        max_share: in [0, 1]; 0 stops at the first skipped step, 1 only when all are.
        share_key: the config key of `max_share`, named in the error.
    """

    def __init__(self, max_share: float, share_key: str = "TRAIN.NONFINITE_SKIP_MAX_SHARE") -> None:
        if not 0.0 <= max_share <= 1.0:
            raise ValueError(f"{share_key} must be in [0, 1], got {max_share}")
        self.max_share = max_share
        self.share_key = share_key
        self.steps = self.skipped = self.epoch_steps = 0

    def before_epoch(self, loop: TrainLoop) -> None:
        self.steps = self.skipped = 0

    def after_step(self, loop: TrainLoop) -> None:
        if self.steps == 0:  # the epoch's first step here: a resumed epoch starts part-way
            self.epoch_steps = loop.iters_per_epoch - loop.iteration
        self.steps += 1
        self.skipped += int(loop.metrics.get("nonfinite_skip", 0.0) >= 1.0)
        if self.skipped > self.max_share * self.epoch_steps or self.skipped == self.epoch_steps:
            raise TooManySkippedSteps(self._message(loop))

    def _message(self, loop: TrainLoop) -> str:
        so_far = f" so far ({self.epoch_steps} in the epoch)" if self.steps < self.epoch_steps else ""
        limit = ("all of the epoch's steps" if self.skipped == self.epoch_steps
                 else f"{self.skipped / self.epoch_steps:.0%} of the epoch's steps, more than {self.share_key} = "
                      f"{self.max_share:g}")
        return (
            f"epoch {loop.epoch + 1}, iteration {loop.iteration + 1}: {self.skipped} of the {self.steps} steps "
            f"run{so_far} were skipped for a non-finite loss, {limit}: the training diverges (the checkpoints "
            "written so far are intact). Lower SOLVER.BASE_LR or clip the gradients (SOLVER.CLIP_GRAD_L2NORM), "
            f"find the first bad step with TRAIN.NONFINITE_LOSS stop, or raise {self.share_key}"
        )


# An exploding loss.

class LossExplosionError(SlowmaskError, RuntimeError):
    """A step's loss exceeded TRAIN.KILL_LOSS_EXPLOSION_FACTOR times its recent mean."""

    kind = "training"


class LossExplosionStop(Hook):
    """Stops the run when a step's loss exceeds `factor` times the mean of the `window`
    steps before it in the same epoch (PySlowFast's TRAIN.KILL_LOSS_EXPLOSION_FACTOR:
    window 5, checked once the epoch has had 6 steps). Runs after the rank means, so every
    rank sees the same loss and stops at the same step."""

    def __init__(self, factor: float, window: int = 5) -> None:
        self.factor = factor
        self.recent: Deque[float] = deque(maxlen=window + 1)

    def before_epoch(self, loop: TrainLoop) -> None:
        self.recent.clear()

    def after_step(self, loop: TrainLoop) -> None:
        loss = float(loop.metrics["loss"])
        previous = list(self.recent)[1:] if len(self.recent) == self.recent.maxlen else []
        self.recent.append(loss)
        if previous and loss > self.factor * sum(previous) / len(previous):
            raise LossExplosionError(
                f"loss exploded at epoch {loop.epoch + 1}, iteration {loop.iteration + 1}: {loss:.4g} > "
                f"TRAIN.KILL_LOSS_EXPLOSION_FACTOR {self.factor:g} x {sum(previous) / len(previous):.4g} "
                f"(mean of the {len(previous)} steps before); lower SOLVER.BASE_LR or raise the factor (0: off)"
            )


# Bad data.

class BadDataError(SlowmaskError, RuntimeError):
    """Too large a fraction of an epoch's items needed a replacement video."""

    kind = "data"


def batch_items(batch: Any) -> List[dict]:
    """The metas of the items in a batch, one per item (collate_clips repeats an item's
    meta for each of its NUM_SAMPLE rows, consecutively; those count once). Empty for a
    batch without metas."""
    metas = batch.get("meta", []) if isinstance(batch, dict) else []
    items: List[dict] = []
    for meta in metas:
        if not isinstance(meta, dict):
            continue
        if items and (meta is items[-1] or meta == items[-1]):
            continue
        items.append(meta)
    return items


def batch_skips(batch: Any) -> Tuple[int, int, List[str]]:
    """(items, items that needed a replacement, the unreadable paths they met) of a batch."""
    items = batch_items(batch)
    replaced = [meta["skipped"] for meta in items if meta.get("skipped")]
    return len(items), len(replaced), [path for skipped in replaced for path in skipped]


class BadDataGuard(Hook):
    """Stops the run when more than `max_fraction` of an epoch's items needed a
    replacement video: bad data never kills a run, until there is too much of it.

    The datasets replace an unreadable video by another one and record it in the item's
    `meta["skipped"]` (see slowmask.data.datasets.clip_dataset). A few corrupt files are normal in a
    large download; a third of the dataset missing is a broken mount or a wrong path, and
    training on what is left would silently learn from another distribution.

    Checked after each step against the items the whole epoch will
    load (the fraction can then only grow, so an early stop is certain to be right) and
    at the end of the epoch.

    In a distributed run every process checks its own share of the data.

    Args:
        max_fraction: in [0, 1]; 1 never stops.
        limit_key: the config key of `max_fraction`, named in the error.
    """

    def __init__(self, max_fraction: float, limit_key: str = "DATA_LOADER.MAX_BAD_FRACTION") -> None:
        if not 0.0 <= max_fraction <= 1.0:
            raise ValueError(f"{limit_key} must be in [0, 1], got {max_fraction}")
        self.max_fraction = max_fraction
        self.limit_key = limit_key
        self.items = self.replaced = 0
        self.paths: Dict[str, None] = {}

    def before_epoch(self, loop: TrainLoop) -> None:
        self.items = self.replaced = 0
        self.paths = {}

    def after_step(self, loop: TrainLoop) -> None:
        items, replaced, paths = batch_skips(loop.batch)
        self.items += items
        self.replaced += replaced
        self.paths.update(dict.fromkeys(paths))
        remaining = loop.iters_per_epoch - loop.iteration - 1
        self._check(loop, self.items + remaining * items)

    def after_epoch(self, loop: TrainLoop) -> None:
        self._check(loop, self.items)

    def _check(self, loop: TrainLoop, epoch_items: int) -> None:
        """Raise BadDataError when the replaced items exceed the limit out of `epoch_items`."""
        if not self.replaced or self.replaced <= self.max_fraction * epoch_items:
            return
        examples = list(self.paths)[:BAD_DATA_EXAMPLES]
        more = f" and {len(self.paths) - len(examples)} more" if len(self.paths) > len(examples) else ""
        raise BadDataError(
            f"epoch {loop.epoch + 1}, iteration {loop.iteration + 1}: {self.replaced} of the "
            f"{self.items} items loaded so far ({self.replaced / max(self.items, 1):.0%}; {epoch_items} "
            f"in the epoch) needed a replacement for an unreadable video, more than {self.limit_key} = "
            f"{self.max_fraction:g} of the epoch; {len(self.paths)} unreadable file(s), e.g. "
            f"{', '.join(examples)}{more}. Check the dataset's files and paths, or raise {self.limit_key}"
        )
