"""Bad data never kills a run, until there is too much of it.

The datasets replace an unreadable video by another one and record it in the item's
`meta["skipped"]` (see slowmask.data.video_dataset). This hook counts, per epoch, the items
the loader delivered and those that needed a replacement, and stops the run when more
than `max_fraction` of them did: a few corrupt files are normal in a large download, a
third of the dataset missing is a broken mount or a wrong path, and training on what
is left would silently learn from another distribution.
"""

import logging
from typing import Any, Dict, List, Tuple

from .loop import Hook, TrainLoop
from slowmask.utils.errors import SlowmaskError

logger = logging.getLogger(__name__)

# File names quoted in the error.
EXAMPLES = 5


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
    replacement video. Checked after each step against the items the whole epoch will
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
        examples = list(self.paths)[:EXAMPLES]
        more = f" and {len(self.paths) - len(examples)} more" if len(self.paths) > len(examples) else ""
        raise BadDataError(
            f"epoch {loop.epoch + 1}, iteration {loop.iteration + 1}: {self.replaced} of the "
            f"{self.items} items loaded so far ({self.replaced / max(self.items, 1):.0%}; {epoch_items} "
            f"in the epoch) needed a replacement for an unreadable video, more than {self.limit_key} = "
            f"{self.max_fraction:g} of the epoch; {len(self.paths)} unreadable file(s), e.g. "
            f"{', '.join(examples)}{more}. Check the dataset's files and paths, or raise {self.limit_key}"
        )
