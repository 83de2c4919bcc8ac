"""A deadline for decoding: a decode that takes too long is abandoned, not waited on.

A decoder stuck inside FFmpeg (a network file system that stops answering, a file
that sends the demuxer into a loop) is a blocking C call that Python cannot
interrupt. So the decode runs in a helper thread and the caller stops waiting at the
deadline: it raises `DecodeTimeout` (a `DecodeError`, so the dataset counts the
video as unreadable and takes another one) and hands the stuck thread its notice.

The helper is a daemon thread, one per process (a forked loader worker starts its
own, lazily, on its first decode: nothing here is stored on a dataset, which stays
picklable). An abandoned thread keeps running until its C call returns, if it ever
does, then closes its video and ends; as a daemon it never keeps the process from
exiting. The next decode gets a fresh helper thread.
"""

import logging
import os
import queue
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Callable, Dict, Optional, Tuple, TypeVar

from .decoding import DecodeError

logger = logging.getLogger(__name__)

T = TypeVar("T")
_Job = Optional[Tuple[Callable[[], object], Future]]


class DecodeTimeout(DecodeError):
    """A decode that did not finish within its deadline and was abandoned."""


class _HelperThread:
    """One daemon thread that runs submitted calls in order."""

    def __init__(self) -> None:
        self._jobs: "queue.SimpleQueue[_Job]" = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="slowmask-decode", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[], T]) -> "Future[T]":
        future: "Future[T]" = Future()
        self._jobs.put((fn, future))
        return future

    def retire(self) -> None:
        """Let the thread end after its current call (if that call ever returns)."""
        self._jobs.put(None)

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, future = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as error:  # handed to the waiting caller, who re-raises it
                future.set_exception(error)


_helpers: Dict[int, _HelperThread] = {}  # process id -> its helper thread
_lock = threading.Lock()
_abandoned = 0  # threads left behind in this process


def _helper() -> _HelperThread:
    """This process's helper thread (a forked child does not inherit its parent's)."""
    pid = os.getpid()
    with _lock:
        if pid not in _helpers:
            _helpers.clear()
            _helpers[pid] = _HelperThread()
        return _helpers[pid]


def _abandon(helper: _HelperThread) -> int:
    """Forget `helper` (stuck in a call); returns the number abandoned so far."""
    global _abandoned
    with _lock:
        if _helpers.get(os.getpid()) is helper:
            del _helpers[os.getpid()]
        _abandoned += 1
        helper.retire()
        return _abandoned


def call_with_timeout(fn: Callable[[], T], timeout_s: float, what: str) -> T:
    """`fn()`, run in this process's helper thread, or DecodeTimeout after `timeout_s`
    seconds. `timeout_s` <= 0 calls `fn` here, with no deadline. An exception of `fn`
    reaches the caller unchanged. Meant for one calling thread per process (as in a
    loader worker); `fn` must not share mutable state with the caller, since an
    abandoned call may go on running.

    Raises:
        DecodeTimeout: `fn` was still running at the deadline; `what` names it.
    """
    if timeout_s <= 0:
        return fn()
    helper = _helper()
    future = helper.submit(fn)
    try:
        return future.result(timeout=timeout_s)
    except FutureTimeout:
        count = _abandon(helper)
        logger.warning(
            "abandoned decoding %s after %g s (%d decode thread(s) left behind in process %d)",
            what, timeout_s, count, os.getpid(),
        )
        raise DecodeTimeout(f"decoding {what} took longer than {timeout_s:g} s and was abandoned") from None
