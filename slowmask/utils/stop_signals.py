"""The signals that ask a run to stop, and what they do outside the training loop.

SIGTERM (SLURM preemption, scancel, `docker stop`), SIGUSR1 (SLURM's `--signal=USR1@90`
before a time limit), SIGUSR2 (submitit's time-out and preemption signal) and SIGINT
(Ctrl-C). Once training has begun they make the run write a checkpoint after the current
step and stop (engine/hooks/preemption.py, StopOnSignal). Before that there is nothing to save:
`stopping_at_once` ends the process at once with StoppedBeforeStart, exit 128 + the
signal's number. A process that only waits for its training processes passes the signals
on to them (`Forwarder`), so that they decide, each by its own moment.

A SIGINT that the process was started ignoring (a shell's background job, nohup) stays
ignored: whoever started it chose so.
"""

import os
import signal
import threading
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from .errors import StoppedBeforeStart

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2, signal.SIGINT)


def names(signals: Sequence[int]) -> str:
    return "/".join(signal.Signals(number).name for number in signals)


def taken_over(signals: Sequence[int]) -> Tuple[int, ...]:
    """The `signals` a run may handle: all but a SIGINT this process ignores."""
    return tuple(n for n in signals if not (n == signal.SIGINT and signal.getsignal(n) == signal.SIG_IGN))


class _StopAtOnce:
    """The handler of `stopping_at_once`; `previous` holds the handlers it replaced."""

    def __init__(self, previous: Dict[int, Any]) -> None:
        self.previous = previous

    def __call__(self, signum: int, frame: Any) -> None:
        # SLURM signals every process while a waiting parent forwards its copy: the
        # repeat must not interrupt the unwinding. A second Ctrl-C still does.
        for number in self.previous:
            if number != signal.SIGINT:
                signal.signal(number, signal.SIG_IGN)
        pass_on(self.previous.get(signum), signum)
        raise StoppedBeforeStart(signum, signal.Signals(signum).name)


def original_handler(handler: Any, signum: int) -> Any:
    """The handler that was there before any `stopping_at_once` replaced it."""
    while isinstance(handler, _StopAtOnce):
        handler = handler.previous.get(signum)
    return handler


def handler_to_pass_on(handler: Any, signum: int) -> Optional[Callable[[int, Any], Any]]:
    """The handler a signal had before slowmask's, when it is a Python function to call
    (submitit's, which requeues the job and exits), else None: Python's own SIGINT
    handler (it raises KeyboardInterrupt), SIG_DFL and SIG_IGN are not called."""
    handler = original_handler(handler, signum)
    if callable(handler) and handler is not signal.default_int_handler:
        return handler
    return None


def pass_on(handler: Any, signum: int) -> None:
    """Call `handler_to_pass_on(handler, signum)`, if any."""
    before = handler_to_pass_on(handler, signum)
    if before is not None:
        before(signum, None)


@contextmanager
def stopping_at_once(signals: Sequence[int] = STOP_SIGNALS) -> Iterator[None]:
    """While the block runs, a stop signal raises StoppedBeforeStart where the main
    thread is (in a wait at the rendezvous, in building the model), after handing it to
    the handler installed before (see `pass_on`). Outside the main thread, where Python
    cannot install handlers, the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    taken = taken_over(signals)
    previous = {number: signal.getsignal(number) for number in taken}
    handler = _StopAtOnce(previous)
    for number in taken:
        signal.signal(number, handler)
    try:
        yield
    finally:
        for number, before in previous.items():
            signal.signal(number, before)


def _terminal_signals_the_group() -> bool:
    """True when this process belongs to the foreground job of its terminal: a Ctrl-C
    there reaches every process of the group, the children too."""
    try:
        tty = os.open("/dev/tty", os.O_RDONLY)
    except OSError:
        return False
    try:
        return os.tcgetpgrp(tty) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(tty)


class Forwarder:
    """Passes the stop signals this process receives on to its children (use as a
    context; name them with `to(pids)` once started; the signals that came before are
    sent then). The children act on them: stop at once before their first step, else
    checkpoint and stop. A Ctrl-C of the terminal is not passed on, as the children have
    it already and a copy would count as a second Ctrl-C. `received` keeps the first
    signal, for a child that died of it before installing its own handlers."""

    def __init__(self, signals: Sequence[int] = STOP_SIGNALS) -> None:
        self.signals = signals
        self.pids: List[int] = []
        self.pending: List[int] = []
        self.previous: Dict[int, Any] = {}
        self.received: Optional[int] = None  # the first stop signal this process got

    def __enter__(self) -> "Forwarder":
        if threading.current_thread() is threading.main_thread():
            self.previous = {number: signal.signal(number, self._receive) for number in taken_over(self.signals)}
        return self

    def __exit__(self, *exc: Any) -> None:
        for number, before in self.previous.items():
            signal.signal(number, before)

    def to(self, pids: Sequence[int]) -> None:
        self.pids = list(pids)
        for signum in self.pending:
            self._send(signum)
        self.pending.clear()

    def _receive(self, signum: int, frame: Any) -> None:
        self.received = self.received or signum
        if signum == signal.SIGINT and _terminal_signals_the_group():
            return
        if self.pids:
            self._send(signum)
        else:
            self.pending.append(signum)

    def _send(self, signum: int) -> None:
        for pid in self.pids:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:  # that child has ended already
                pass
