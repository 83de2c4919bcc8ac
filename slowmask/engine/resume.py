"""Where a run continues: the epoch and batch after a checkpoint, and the generator
states to restore right before that batch."""

from dataclasses import dataclass
from typing import Any, Dict, Optional

from .rng_state import restore_rng_state


@dataclass(frozen=True)
class ResumePoint:
    """The next batch to run: `iteration` batches of 0-based `epoch` are done.
    `rng_state`: the global generators at that moment (None: a fresh run, or a
    checkpoint written without them, e.g. by PySlowFast)."""

    epoch: int = 0
    iteration: int = 0
    rng_state: Optional[Dict[str, Any]] = None

    @classmethod
    def after(cls, state: Optional[Dict[str, Any]]) -> "ResumePoint":
        """The point after a loaded checkpoint dict (None: the start of training). An
        end-of-epoch checkpoint has no `iteration`: the run goes on at the next epoch."""
        if state is None:
            return cls()
        if state.get("iteration") is None:
            return cls(int(state["epoch"]) + 1, 0, state.get("rng_state"))
        return cls(int(state["epoch"]), int(state["iteration"]), state.get("rng_state"))

    def batches_done(self, epoch: int) -> int:
        """Batches of `epoch` already run: `iteration` for the resumed epoch, else 0."""
        return self.iteration if epoch == self.epoch else 0

    def restore_generators(self) -> None:
        """Put the global generators where the interrupted run had them (no-op without)."""
        if self.rng_state is not None:
            restore_rng_state(self.rng_state)
