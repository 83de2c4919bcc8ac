"""Loader workers that end with the run: a failure in a worker, or a worker's death,
ends the training process within seconds with one line, never a hang.

- Workers ignore the job's stop signals (SLURM sends SIGTERM to every process of a
  preempted job; the training process checkpoints after its step, then ends its
  workers), but not their own parent's SIGTERM: that is how a DataLoader, and
  multiprocessing at the interpreter's exit, end a worker that does not answer. A worker
  that ignored that one too kept its parent's exit waiting forever. A Python signal
  handler cannot tell who sent a signal, so the worker blocks the stop signals and a
  thread takes them with `sigwaitinfo`, which names the sender.
- torch raises its "worker killed" error from a SIGCHLD handler, wherever the training
  process is: inside an optimizer update, or a checkpoint being written. While a
  `WatchedLoader`'s epoch runs, a SIGCHLD only records which worker died; the next batch
  asked for raises LoaderWorkerKilled instead, between two steps, where the model is
  whole and a checkpoint can be written (engine/train.py writes it; exit status 8).
- An expected error raised in a worker (NoReadableVideoError, ...) reaches the training
  process with the worker's traceback as its message; it gets back its own message,
  the worker's traceback kept as a note (which goes to the log with the traceback).
"""

import os
import re
import signal
import threading
from multiprocessing import active_children
from typing import Any, Dict, Iterator, Optional, Set

from torch.utils.data import DataLoader
from torch.utils.data._utils import signal_handling as torch_signal_handling

from slowmask.utils.errors import SlowmaskError
from slowmask.utils.stop_signals import STOP_SIGNALS

# The end of a worker's traceback as torch relays it: "[module.]Name: message".
_RAISED = r"^(?:[\w.]+\.)?{name}: "
_WORKER_PREFIX = re.compile(r"^Caught \w+ in DataLoader worker process \d+\.")


class LoaderWorkerKilled(SlowmaskError):
    """The loader worker `pid` ended by `death` ("SIGKILL": the kernel's out-of-memory
    killer, usually) during an epoch; `outcome` says what the run did about it."""

    kind = "worker"

    def __init__(self, pid: int, death: str, outcome: str = "") -> None:
        super().__init__(
            f"data-loader worker (pid {pid}) ended by {death}{outcome}; a SIGKILL is usually the kernel's "
            "out-of-memory killer (see `dmesg`): lower DATA_LOADER.NUM_WORKERS, TRAIN.BATCH_SIZE or "
            "DATA.DECODING_SHORT_SIZE"
        )
        self.pid = pid
        self.death = death


def shield_from_stop_signals(worker_id: int) -> None:
    """A loader's `worker_init_fn`: the worker drops the stop signals (SIGTERM, SIGUSR1,
    SIGUSR2, SIGINT) that others send, and ends at once on its parent's SIGTERM. (torch's
    own worker handler would end a worker on any of them, and the run with it, before
    the training process has written its checkpoint.)"""
    parent = os.getppid()
    # Blocked before any other thread of the worker starts, so that all of them inherit
    # the mask and only `sigwaitinfo` below ever takes these signals.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    threading.Thread(target=_take_stop_signals, args=(parent,), name="slowmask-stop-signals", daemon=True).start()


def _take_stop_signals(parent: int) -> None:
    while True:
        received = signal.sigwaitinfo(STOP_SIGNALS)
        if received.si_signo == signal.SIGTERM and received.si_pid == parent:
            # Status 0: torch's SIGCHLD check in the parent takes any other for a crash.
            os._exit(0)


def _death(pid: int) -> Optional[str]:
    """How the child `pid` ended ("SIGKILL", "exit status 3"), None while it runs or
    ended with status 0; the child stays unreaped (WNOWAIT) for its owner to collect."""
    try:
        ended = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:  # collected already
        return None
    if ended is None or (ended.si_code == os.CLD_EXITED and ended.si_status == 0):
        return None
    if ended.si_code == os.CLD_EXITED:
        return f"exit status {ended.si_status}"
    return signal.Signals(ended.si_status).name


class _WorkerDied(Exception):
    """Raised by the SIGCHLD handler inside a wait for a batch, to end the wait at once."""


class _WatchedBatches(Iterator[Any]):
    """A DataLoader iterator that turns a dead worker into LoaderWorkerKilled between
    batches, gives a worker's expected error its own message, and ends the workers as
    soon as it stops (done, failed, or closed)."""

    def __init__(self, loader: DataLoader) -> None:
        self.watching = False  # our SIGCHLD handler is installed
        self.persistent = loader.persistent_workers  # kept for the next epoch, unless an error ends them
        before = {child.pid for child in active_children()}
        self.batches = DataLoader.__iter__(loader)
        self.workers: Set[int] = {child.pid for child in active_children()} - before
        self.dead: Dict[int, str] = {}  # worker pid -> how it ended
        self.waiting = False  # inside the wait for a batch, where the handler may raise
        self.previous: Any = None
        if self.workers and threading.current_thread() is threading.main_thread():
            self.watching = True
            # torch installs its own handler once per process; from then on ours replaces it
            # while the epoch runs (it raises wherever the main thread is; see the docstring).
            torch_signal_handling._set_SIGCHLD_handler()
            self.previous = signal.signal(signal.SIGCHLD, self._record)

    def _record(self, signum: int, frame: Any) -> None:
        for pid in self.workers - self.dead.keys():
            death = _death(pid)
            if death is not None:
                self.dead[pid] = death
        if self.dead and self.waiting:
            raise _WorkerDied()

    def __len__(self) -> int:
        return len(self.batches)

    def __next__(self) -> Any:
        if self.dead:
            self._fail(self._killed())
        try:
            self.waiting = True
            try:
                return next(self.batches)
            finally:
                self.waiting = False
        except StopIteration:
            self.close(end_workers=False)  # torch has ended them
            raise
        except SlowmaskError as error:
            self._fail(one_line(error))
        except (RuntimeError, _WorkerDied) as error:  # torch's "worker (pid(s) ...) exited unexpectedly"
            if self.watching:
                self._record(signal.SIGCHLD, None)
            self._fail(self._killed() if self.dead else error, cause=error)
        except BaseException as error:
            self._fail(error)

    def _fail(self, error: BaseException, cause: Optional[BaseException] = None) -> None:
        self.close()
        if cause is None or cause is error:
            raise error
        raise error from cause

    def _killed(self) -> LoaderWorkerKilled:
        pid, death = next(iter(self.dead.items()))
        return LoaderWorkerKilled(pid, death)

    def close(self, end_workers: bool = True) -> None:
        """Give SIGCHLD back to torch's handler; with `end_workers`, end the workers now."""
        if self.watching and threading.current_thread() is threading.main_thread():
            self.watching = False
            signal.signal(signal.SIGCHLD, self.previous)
        # torch ends workers when its iterator is collected, which an error's traceback
        # delays; ended here, they neither decode on for nothing nor outlive the error.
        shutdown = getattr(self.batches, "_shutdown_workers", None)
        if end_workers and shutdown is not None:
            shutdown()

    def __del__(self) -> None:  # an epoch left early (a stop): the workers end with it
        if hasattr(self, "batches"):
            self.close(end_workers=not self.persistent)


def one_line(error: SlowmaskError) -> SlowmaskError:
    """`error` as torch re-raised it from a worker ("Caught X in DataLoader worker process
    N. Original Traceback ..."), given back the worker's own message; the worker's
    traceback becomes a note. Any other error is returned as it is."""
    text = str(error)
    if not _WORKER_PREFIX.match(text):
        return error
    raised = list(re.finditer(_RAISED.format(name=type(error).__name__), text, re.MULTILINE))
    if not raised:
        return error
    error.args = (text[raised[-1].end():].strip(),)
    error.add_note(f"raised in a data-loader worker: {text}")
    return error


class WatchedLoader(DataLoader):
    """A DataLoader whose iterators watch their workers (see the module docstring)."""

    def __iter__(self) -> Iterator[Any]:
        return _WatchedBatches(self)
