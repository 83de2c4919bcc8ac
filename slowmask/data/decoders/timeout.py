"""A deadline for decoding: a decode that takes too long is abandoned, not waited on.

A decoder stuck inside FFmpeg (a network file system that stops answering, a file
that sends the demuxer into a loop) is a blocking C call that Python cannot
interrupt. So the decode runs in a helper thread and the caller stops waiting at the
deadline: it raises `DecodeTimeout` (a `DecodeError`, so the dataset counts the
video as unreadable and takes another one) and hands the stuck thread its notice.

The helper is a daemon thread, one per process (a forked loader worker starts its
own, lazily, on its first decode: nothing here is stored on a dataset, which stays
picklable). An abandoned thread is told so: a decoder that checks `stop_if_abandoned`
between frames (PyAV's does) stops at the next frame, closes its video and ends. A
thread stuck inside one C call runs on until the call returns, if it ever does; as a
daemon it never keeps the process from exiting. The next decode gets a fresh helper
thread. Each stuck thread holds its frames and a CPU, so they are bounded: when more
than `max_stuck` abandoned threads of a process are still running, the run stops
with StuckDecodes (a data error, status 3) rather than start yet another.
"""

import logging
import os
import queue
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Callable, Dict, List, Optional, Tuple, TypeVar

from slowmask.utils.errors import DataError

from .video import DecodeError

logger = logging.getLogger(__name__)

T = TypeVar("T")
_Job = Optional[Tuple[Callable[[], object], Future]]


# Abandoned decode threads a process may have running before the run stops.
MAX_STUCK_DECODES = 4


class DecodeTimeout(DecodeError):
    """A decode that did not finish within its deadline and was abandoned."""


class StuckDecodes(DataError):
    """More abandoned decodes still running in a process than the bound allows."""


class _HelperThread:
    """One daemon thread that runs submitted calls in order."""

    def __init__(self) -> None:
        self._jobs: "queue.SimpleQueue[_Job]" = queue.SimpleQueue()
        self.abandoned = threading.Event()
        self.pid = os.getpid()
        self._thread = threading.Thread(target=self._serve, name="slowmask-decode", daemon=True)
        self._thread.start()

    def is_running(self) -> bool:
        return self._thread.is_alive()

    def submit(self, fn: Callable[[], T]) -> "Future[T]":
        future: "Future[T]" = Future()
        self._jobs.put((fn, future))
        return future

    def retire(self) -> None:
        """Tell the current call it is abandoned, and let the thread end after it (if that
        call ever returns)."""
        self.abandoned.set()
        self._jobs.put(None)

    def _serve(self) -> None:
        _current.helper = self
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
_abandoned: List[_HelperThread] = []  # threads left behind in this process, still running when last looked
_current = threading.local()  # .helper: the _HelperThread of a helper thread


def stop_if_abandoned() -> None:
    """For a decoder to call between frames: raises DecodeTimeout in a helper thread whose
    call was abandoned (the caller stopped waiting), so that the decode stops there."""
    helper = getattr(_current, "helper", None)
    if helper is not None and helper.abandoned.is_set():
        raise DecodeTimeout("abandoned by its caller after its deadline")


def _helper() -> _HelperThread:
    """This process's helper thread (a forked child does not inherit its parent's)."""
    pid = os.getpid()
    with _lock:
        if pid not in _helpers:
            _helpers.clear()
            _helpers[pid] = _HelperThread()
        return _helpers[pid]


def _abandon(helper: _HelperThread) -> int:
    """Forget `helper` (stuck in a call); returns the number of abandoned threads of this
    process still running, `helper` included."""
    global _abandoned
    pid = os.getpid()
    with _lock:
        if _helpers.get(pid) is helper:
            del _helpers[pid]
        helper.retire()
        _abandoned = [left for left in _abandoned if left.is_running() and left.pid == pid] + [helper]
        return len(_abandoned)


def call_with_timeout(fn: Callable[[], T], timeout_s: float, what: str, max_stuck: int = MAX_STUCK_DECODES) -> T:
    """`fn()`, run in this process's helper thread, or DecodeTimeout after `timeout_s`
    seconds. `timeout_s` <= 0 calls `fn` here, with no deadline. An exception of `fn`
    reaches the caller unchanged. Meant for one calling thread per process (as in a
    loader worker); `fn` must not share mutable state with the caller, since an
    abandoned call may go on running.

    Raises:
        DecodeTimeout: `fn` was still running at the deadline; `what` names it.
        StuckDecodes: ... and more than `max_stuck` abandoned calls of this process
            still run: the process must not start another.
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
        if count > max_stuck:
            raise StuckDecodes(
                f"{count} decodes abandoned after DATA_LOADER.DECODE_TIMEOUT ({timeout_s:g} s) still run in process "
                f"{os.getpid()}, the latest of {what}; each holds memory and a CPU, so the run stops: take such "
                "videos out of the list, lower DATA.MAX_FRAME_PIXELS to refuse large frames unread, or raise "
                "DATA_LOADER.DECODE_TIMEOUT if they are only slow"
            ) from None
        raise DecodeTimeout(f"decoding {what} took longer than {timeout_s:g} s and was abandoned") from None
