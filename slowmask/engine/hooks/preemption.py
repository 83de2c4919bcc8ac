"""StopOnSignal: the checkpoint and stop on a preemption signal (SLURM's, submitit's,
Ctrl-C), agreed by every rank, and `run_from`, which runs the loop with the signals caught.
"""

import logging
import os
import signal
import threading
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Optional, Sequence

import torch.distributed as dist

from slowmask.utils.errors import EXIT_STATUS, SlowmaskError, StoppedBeforeStart, StoppedBySignal
from slowmask.utils.stop_signals import STOP_SIGNALS, handler_to_pass_on, names, pass_on, taken_over

from ..distributed import any_rank, is_distributed
from ..loop import Hook, TrainLoop
from ..resume import ResumePoint
from .checkpointing import SaveCheckpoint, _pending

logger = logging.getLogger(__name__)


# The exit status of a run stopped by a signal after writing its checkpoint:
# EX_TEMPFAIL of sysexits.h, "a temporary failure; the user is invited to retry".
EXIT_PREEMPTED = EXIT_STATUS["preempted"]


class TrainingPreempted(SlowmaskError, RuntimeError):
    """The run stopped on a signal after writing `checkpoint` (on rank 0; None elsewhere)."""

    kind = "preempted"

    def __init__(self, message: str, checkpoint: Optional[str]) -> None:
        super().__init__(message)
        self.checkpoint = checkpoint


class StopOnSignal(Hook):
    """Stops the loop after the first step (or epoch end) that follows a stop signal,
    once no gradients are pending, writing a checkpoint there through `save` (given on
    rank 0 only), so that the requeued job resumes with TRAIN.AUTO_RESUME. Install the
    handlers around the loop with `catching_signals()`. Before the first step begins, a
    signal raises StoppedBeforeStart at once (nothing to save); a Ctrl-C (SIGINT) while a
    stop is pending raises StoppedBySignal at once (a second Ctrl-C aborts, without the
    checkpoint; the ones written before stay).

    The signals are those of utils.stop_signals: SIGTERM, SIGUSR1 (what SLURM sends before
    it preempts or times out a job, `--signal=USR1@90`), SIGUSR2 (submitit's) and SIGINT.
    A handler installed before the run (submitit's, which requeues the job) is handed the
    signal once the checkpoint is written (`hand_over`). The handler only records the
    signal; this hook acts on it between steps. In a multi-process job the ranks agree on
    it after every step (an all-reduce of one number), so that all of them stop after the
    same iteration; rank 0 writes the checkpoint while the others wait (under TRAIN.SHARDING
    every rank writes its shards). While gradients
    are being accumulated the stop waits for the next optimizer update. tools/run_net.py
    then exits with EXIT_PREEMPTED.

    Args:
        save: writes the checkpoint of (0-based epoch, batches done or None); None on
            ranks that do not write checkpoints.
    """

    def __init__(self, save: Optional[SaveCheckpoint], signals: Sequence[int] = STOP_SIGNALS) -> None:
        self.save = save
        self.signals = tuple(signals)
        self.received: Optional[int] = None  # the signal number, set by the handler
        self.started = False  # the first step has begun: a signal now asks for a checkpoint
        self.stopping = False  # agreed by all ranks
        self.stopped: Optional[TrainingPreempted] = None
        self.previous: Dict[int, Any] = {}  # the handlers before catching_signals

    @contextmanager
    def catching_signals(self) -> Iterator["StopOnSignal"]:
        """Record the signals while the block runs; the previous handlers come back after.

        A loader worker forked meanwhile inherits the handler, which does nothing there
        (the training loaders' workers ignore these signals, see data.build). Outside
        the main thread Python cannot install handlers: a warning says so."""
        if threading.current_thread() is not threading.main_thread():
            logger.warning("training outside the main thread: %s will not stop it with a checkpoint",
                           names(self.signals))
            yield self
            return
        owner = os.getpid()

        def record(signum: int, frame) -> None:
            if os.getpid() != owner:  # in a forked loader worker
                return
            if not self.started:
                pass_on(self.previous.get(signum), signum)
                raise StoppedBeforeStart(signum, signal.Signals(signum).name)
            if signum == signal.SIGINT and self.received is not None:
                raise StoppedBySignal(signum, self._aborted())
            self.received = signum  # no logging here: the handler may interrupt a log call

        taken = taken_over(self.signals)
        self.previous = {number: signal.getsignal(number) for number in taken}
        for number in taken:
            signal.signal(number, record)
        try:
            yield self
        finally:
            for number, handler in self.previous.items():
                signal.signal(number, handler)

    def _aborted(self) -> str:
        return (f"aborted by a second SIGINT while stopping on {signal.Signals(self.received).name}: this stop's "
                "checkpoint may be missing, those written before are intact; run the same command again "
                "(TRAIN.AUTO_RESUME True) to continue from the newest")

    def hand_over(self) -> None:
        """Call the handler the received signal had before the run, when it was a Python
        function (submitit's requeue, which exits), now that the checkpoint is written."""
        if self.received is None:
            return
        handler = handler_to_pass_on(self.previous.get(self.received), self.received)
        if handler is not None:
            logger.info("handing %s to the handler installed before the run", signal.Signals(self.received).name)
            handler(self.received, None)

    def before_step(self, loop: TrainLoop) -> None:
        self.started = True

    def after_step(self, loop: TrainLoop) -> None:
        self.stopping = any_rank(self.received is not None) or self.stopping
        done = loop.iteration + 1
        # At the epoch's last batch the next boundary is the epoch's end (after_epoch).
        if self.stopping and done < loop.iters_per_epoch and not _pending(loop):
            self._stop(loop, done)

    def after_epoch(self, loop: TrainLoop) -> None:
        if self.stopping and not _pending(loop):
            self._stop(loop, None)

    def _stop(self, loop: TrainLoop, iteration: Optional[int]) -> None:
        path = self.save(loop.epoch, iteration) if self.save is not None else None
        if is_distributed():
            dist.barrier()  # no rank leaves before the checkpoint is complete
        cause = signal.Signals(self.received).name if self.received is not None else "another rank's stop signal"
        where = f"epoch {loop.epoch + 1}, " + (f"after iteration {iteration}" if iteration else "at its end")
        message = (
            f"stopped on {cause} at {where}; checkpoint: {path or 'written by rank 0'}; exit status "
            f"{EXIT_PREEMPTED}; run the same command again (TRAIN.AUTO_RESUME True) to continue"
        )
        logger.warning(message)
        self.stopped = TrainingPreempted(message, path)
        loop.request_stop()


def run_from(loop: TrainLoop, point: ResumePoint, stop: StopOnSignal) -> None:
    """Run `loop` from `point` (its generators restored right before the first batch)
    with the stop signals caught; raises TrainingPreempted when one stopped the run."""
    point.restore_generators()
    with stop.catching_signals():
        loop.run(point.epoch, point.iteration)
    if stop.stopped is not None:
        stop.hand_over()
        raise stop.stopped
