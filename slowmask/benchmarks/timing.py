"""Timing of repeated calls, the one timing routine of the benchmarks: warm-up, repeats,
median / min / max of the wall clock and of this process's CPU time, and the peak memory
a call takes.

Two functions that are to be compared are timed in alternation (`compare`), so that
a machine that slows down or speeds up while the benchmark runs (other jobs, clock
boost) shifts both measurements alike instead of favouring one of them.
"""

import ctypes
import ctypes.util
import os
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import nn

# How often the memory sampler reads the resident set size.
SAMPLE_INTERVAL_S = 0.001
# /proc/self/statm reports sizes in pages.
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def release_free_memory() -> None:
    """Hand the C allocator's free memory back to the system (glibc's malloc_trim), so
    that the next allocations show in the resident set size; nothing elsewhere."""
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def resident_bytes(pid: Optional[int] = None) -> Optional[int]:
    """Resident set size of process `pid` (this one by default), or None where /proc is
    not available (not Linux)."""
    try:
        with open(f"/proc/{pid or 'self'}/statm") as f:
            return int(f.read().split()[1]) * PAGE_SIZE
    except OSError:
        return None


def peak_resident_bytes(pid: int) -> Optional[int]:
    """Peak resident set size (VmHWM) of process `pid` over its life, or None without /proc."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class PeakMemory:
    """Context manager: the peak memory taken while it is open, in bytes, in `peak`.

    On a CUDA device, the peak of PyTorch's allocator above its level at entry; on the
    CPU, the peak resident set size above its size at entry (after the C allocator's
    free memory is handed back, so that reused memory counts), sampled every
    SAMPLE_INTERVAL_S by a thread (None where /proc is not available).
    """

    def __init__(self, device: torch.device = torch.device("cpu")) -> None:
        self.device = device
        self.peak: Optional[int] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            return self
        release_free_memory()
        self._start = resident_bytes()
        if self._start is not None:
            self._highest = self._start
            self._stop.clear()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            self._highest = max(self._highest, resident_bytes() or 0)

    def __exit__(self, *exc_info) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device) - self._start
        elif self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._highest = max(self._highest, resident_bytes() or 0)
            self.peak = self._highest - self._start


@dataclass
class Timing:
    """Seconds per call of the timed repeats (wall clock), the largest peak memory of a
    call, and where measured the CPU seconds of each call (this process, all threads:
    steadier than the wall clock when other processes share the cores)."""

    seconds: List[float] = field(default_factory=list)
    peak_bytes: Optional[int] = None
    cpu_seconds: List[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def min(self) -> float:
        return min(self.seconds)

    @property
    def max(self) -> float:
        return max(self.seconds)

    @property
    def cpu_median(self) -> float:
        if not self.cpu_seconds:
            raise ValueError("this timing holds no CPU times (only measure and compare record them)")
        return statistics.median(self.cpu_seconds)

    def add(self, seconds: float, peak: Optional[int], cpu_seconds: Optional[float] = None) -> None:
        self.seconds.append(seconds)
        if peak is not None:
            self.peak_bytes = max(peak, self.peak_bytes or 0)
        if cpu_seconds is not None:
            self.cpu_seconds.append(cpu_seconds)

    def as_dict(self) -> Dict[str, object]:
        return {
            "median_s": self.median,
            "min_s": self.min,
            "max_s": self.max,
            "seconds": list(self.seconds),
            "peak_bytes": self.peak_bytes,
        }


def _timed_call(fn: Callable[[], object], device: torch.device) -> Tuple[float, Optional[int], float]:
    """(wall seconds, peak memory, CPU seconds) of one call."""
    with PeakMemory(device) as memory:
        start, cpu_start = time.perf_counter(), time.process_time()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    return seconds, memory.peak, cpu_seconds


def measure(
    fn: Callable[[], object], warmup: int = 1, repeats: int = 5, device: torch.device = torch.device("cpu")
) -> Timing:
    """Call `fn` `warmup` times untimed, then `repeats` times timed."""
    if warmup < 0 or repeats < 1:
        raise ValueError(f"need warmup >= 0 and repeats >= 1, got {warmup}, {repeats}")
    for _ in range(warmup):
        fn()
    timing = Timing()
    for _ in range(repeats):
        timing.add(*_timed_call(fn, device))
    return timing


def compare(
    candidate: Callable[[], object],
    baseline: Callable[[], object],
    warmup: int = 1,
    repeats: int = 5,
    device: torch.device = torch.device("cpu"),
) -> Tuple[Timing, Timing]:
    """Time two functions in alternation (the order flips every repeat, so neither
    always runs on a warmer cache); returns (candidate's, baseline's) timings."""
    if warmup < 0 or repeats < 1:
        raise ValueError(f"need warmup >= 0 and repeats >= 1, got {warmup}, {repeats}")
    for _ in range(warmup):
        candidate()
        baseline()
    timings = {"candidate": Timing(), "baseline": Timing()}
    calls = [("candidate", candidate), ("baseline", baseline)]
    for repeat in range(repeats):
        for name, fn in calls if repeat % 2 == 0 else calls[::-1]:
            timings[name].add(*_timed_call(fn, device))
    return timings["candidate"], timings["baseline"]


def pretraining_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, clips: torch.Tensor, masks: torch.Tensor
) -> Callable[[], None]:
    """One training step of a masked-pretraining model on fixed inputs, as a call to time:
    forward, backward and the optimizer's update."""

    def step() -> None:
        loss = model(clips, masks)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step
