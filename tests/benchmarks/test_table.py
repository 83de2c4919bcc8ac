"""The benchmark's rows: ratios, values and targets from the two timings; the Markdown
table; the machine."""

import os

import pytest
import torch

from slowmask.benchmarks.table import format_table, machine, row
from slowmask.benchmarks.timing import Timing


def test_ratio_is_a_speedup_or_a_cost():
    fast, slow = Timing([1.0]), Timing([3.0])
    speedup = row("hog", "x", fast, "y", slow, target=2.0)
    assert speedup["ratio"] == pytest.approx(3.0) and speedup["met"] and speedup["value"] == 1000.0
    assert speedup["ratio_kind"] == "speedup" and speedup["target"] == ">= 2x"
    cost = row("loader", "x", slow, "y", fast, per_clip=True, cost_limit=2.0)
    assert cost["ratio"] == pytest.approx(3.0) and cost["met"] is False
    assert cost["value"] == pytest.approx(1 / 3) and cost["unit"] == "clips/s"
    assert cost["ratio_kind"] == "cost" and cost["target"] == "< 2x"
    plain = row("step", "x", fast, "y", slow, share=0.5)
    assert plain["met"] is None and plain["target"] == "" and plain["share"] == 0.5


def test_the_table_has_a_line_per_row():
    timing = Timing([0.002, 0.001, 0.003], peak_bytes=3 * 2**20)
    table = format_table([row("hog", "fast hog", timing, "slow hog", Timing([0.004]), target=3.0)])
    assert table.splitlines()[2:] == [
        "| hog | fast hog | 2.0 ms (1.0-3.0 ms, peak 3 MiB) | slow hog | 4.0 ms | 2.00x speedup | >= 3x | no |"
    ]


def test_machine_is_what_torch_and_os_report():
    info = machine()
    assert info["torch"] == torch.__version__ and info["cpus"] == os.cpu_count()
    assert info["cpu_threads"] == torch.get_num_threads() and info["cuda"] == torch.cuda.is_available()
