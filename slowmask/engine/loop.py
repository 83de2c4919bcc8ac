"""The training loop: epochs of `step(batch)` calls, with hooks around them.

Schedules, checkpoints, logging and evaluation are hooks (see hooks/); the loop
only keeps the position (epoch, iteration) and the timings that hooks read.
"""

import time
from typing import Any, Callable, Dict, Iterable, List, Sequence


class Hook:
    """Called by TrainLoop; override the moments you need. `loop` is the TrainLoop.

    A hook whose state must outlive an interruption (a history, a running count) returns
    it from `state_dict()` and takes it back in `load_state_dict()`: every training
    checkpoint stores the states under the checkpoint's `hooks_state`, by `state_key`,
    and a resumed run hands them back before its first step (engine/resume.py). The
    state is plain values and tensors (what `torch.load(weights_only=True)` reads).
    """

    @property
    def state_key(self) -> str:
        """The name this hook's state is stored under: its class name."""
        return type(self).__name__

    def state_dict(self) -> Dict[str, Any]:
        """What a resumed run needs to go on as if uninterrupted; {}: nothing (the default)."""
        return {}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Take back a `state_dict()` of the interrupted run; the default has nothing to load."""

    def before_train(self, loop: "TrainLoop") -> None:
        pass

    def before_epoch(self, loop: "TrainLoop") -> None:
        pass

    def before_step(self, loop: "TrainLoop") -> None:
        pass

    def after_step(self, loop: "TrainLoop") -> None:
        pass

    def after_epoch(self, loop: "TrainLoop") -> None:
        pass

    def after_train(self, loop: "TrainLoop") -> None:
        pass


def hook_states(hooks: Sequence[Hook]) -> Dict[str, Dict[str, Any]]:
    """{state_key: state} of the hooks whose `state_dict()` is not empty.

    Raises:
        ValueError: two hooks with a state share a key (give one its own `state_key`).
    """
    states: Dict[str, Dict[str, Any]] = {}
    for hook in hooks:
        state = hook.state_dict()
        if not state:
            continue
        if hook.state_key in states:
            raise ValueError(f"two hooks keep a state under the key {hook.state_key!r}: give one its own state_key")
        states[hook.state_key] = state
    return states


def load_hook_states(hooks: Sequence[Hook], states: Dict[str, Dict[str, Any]]) -> List[str]:
    """Hand each hook its state from `states` (a `hook_states` result); returns the keys
    of `states` that no hook here took."""
    by_key = {hook.state_key: hook for hook in hooks}
    for key, state in states.items():
        if key in by_key:
            by_key[key].load_state_dict(state)
    return [key for key in states if key not in by_key]


class TrainLoop:
    """Runs epochs [start_epoch, max_epoch) of `step` over `loader`.

    Attributes read by hooks: epoch (0-based), iteration (within the epoch, counted
    from the start of the epoch also when the run resumed part-way through it),
    iters_per_epoch (the full epoch's), max_epoch, metrics (of the last step), batch
    (the last one), batches_done (of the epoch, those whose step and hooks have completed,
    a resumed epoch's skipped ones included: where a checkpoint written when the loader
    fails would resume), data_time and step_time (seconds, last iteration). A hook ends the
    run early with `request_stop()`: the loop stops after the current hook moment
    (skipping the rest of the epoch and its `after_epoch`) and calls `after_train`.
    """

    def __init__(
        self,
        step: Callable[[Dict[str, Any]], Dict[str, float]],
        loader: Iterable,
        hooks: List[Hook],
        max_epoch: int,
    ) -> None:
        self.step = step
        self.loader = loader
        self.hooks = hooks
        self.max_epoch = max_epoch
        self.iters_per_epoch = len(loader)
        self.epoch = self.iteration = self.batches_done = 0
        self.metrics: Dict[str, float] = {}
        self.batch: Any = None
        self.data_time = self.step_time = 0.0
        self.stop_requested = False
        self.start_iteration = 0  # batches of the first epoch run done before this run

    def request_stop(self) -> None:
        self.stop_requested = True

    def _call(self, moment: str) -> None:
        for hook in self.hooks:
            getattr(hook, moment)(self)

    def run(self, start_epoch: int = 0, start_iteration: int = 0) -> None:
        """Epochs [start_epoch, max_epoch); the first one from batch `start_iteration`
        (the loader must then yield only the batches after it, see data.set_epoch)."""
        self.stop_requested = False
        self.start_iteration = start_iteration
        self._call("before_train")
        for self.epoch in range(start_epoch, self.max_epoch):
            self._call("before_epoch")
            self._run_epoch(start_iteration if self.epoch == start_epoch else 0)
            if self.stop_requested:
                break
            self._call("after_epoch")
            if self.stop_requested:
                break
        self._call("after_train")

    def _run_epoch(self, first_iteration: int) -> None:
        tick = time.perf_counter()
        self.batches_done = first_iteration
        for self.iteration, batch in enumerate(self.loader, start=first_iteration):
            self.data_time = time.perf_counter() - tick
            self.batch = batch
            self._call("before_step")
            try:
                self.metrics = self.step(batch)
            except FloatingPointError as error:  # the step's NonFiniteLossError, placed in the run
                raise type(error)(
                    f"{error} at epoch {self.epoch + 1}, iteration {self.iteration + 1}; "
                    "the checkpoints written so far are intact"
                ) from error
            self.step_time = time.perf_counter() - tick - self.data_time
            self._call("after_step")
            self.batches_done = self.iteration + 1
            if self.stop_requested:
                return
            tick = time.perf_counter()
