"""Timing helpers of the benchmark: warm-up, repeats, alternation, peak memory."""

import time

import pytest
import torch

from slowmask.benchmarks.timing import PeakMemory, Timing, compare, measure, resident_bytes


def test_measure_warms_up_then_times_each_repeat():
    calls = []
    timing = measure(lambda: calls.append(1), warmup=2, repeats=3)
    assert len(calls) == 5 and len(timing.seconds) == 3
    assert timing.min <= timing.median <= timing.max
    assert set(timing.as_dict()) == {"median_s", "min_s", "max_s", "seconds", "peak_bytes"}


def test_compare_alternates_and_flips_the_order():
    order = []
    candidate, baseline = compare(lambda: order.append("c"), lambda: order.append("b"), warmup=1, repeats=4)
    assert order == ["c", "b", "c", "b", "b", "c", "c", "b", "b", "c"]
    assert len(candidate.seconds) == len(baseline.seconds) == 4


@pytest.mark.parametrize("fn", [measure, lambda f, **kw: compare(f, f, **kw)])
def test_bad_counts_are_rejected(fn):
    with pytest.raises(ValueError, match="repeats >= 1"):
        fn(lambda: None, warmup=0, repeats=0)


@pytest.mark.skipif(resident_bytes() is None, reason="needs /proc")
def test_peak_memory_counts_what_the_block_allocates():
    with PeakMemory() as memory:
        block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
    assert memory.peak >= 48 * 2**20
    del block
    with PeakMemory() as memory:
        pass
    assert memory.peak < 16 * 2**20


def test_timing_keeps_the_largest_peak():
    timing = Timing()
    timing.add(1.0, 10)
    timing.add(2.0, None)
    timing.add(3.0, 5)
    assert timing.peak_bytes == 10 and timing.median == 2.0


def test_each_repeat_records_its_cpu_time_beside_the_wall_clock():
    timing = measure(lambda: time.sleep(0.05), warmup=0, repeats=2)
    assert len(timing.cpu_seconds) == len(timing.seconds) == 2
    assert min(timing.seconds) >= 0.05
    assert timing.cpu_median < 0.5 * timing.median  # sleeping takes no CPU
    with pytest.raises(ValueError, match="no CPU times"):
        Timing([1.0]).cpu_median
