"""The benchmark's table: one row per figure, measured beside its baseline, as a dict
(what `tools/benchmark.py --json` writes) and as Markdown; and the machine it ran on."""

import os
import platform
from typing import Dict, List, Optional

import torch

from .timing import Timing


def row(
    part: str,
    what: str,
    timing: Timing,
    baseline: str,
    baseline_timing: Timing,
    per_clip: bool = False,
    target: Optional[float] = None,
    cost_limit: Optional[float] = None,
    **extra,
) -> dict:
    """One table row. `ratio` is the speedup (baseline time / time), or with
    `cost_limit` the cost (time / baseline time); `met` checks it against `target` (a
    least speedup) or `cost_limit` (a cost to stay under). Values are clips/s with
    `per_clip` (the timings then being seconds per clip), else milliseconds."""
    speedup = baseline_timing.median / timing.median
    ratio = 1.0 / speedup if cost_limit is not None else speedup
    met = None
    if target is not None:
        met = speedup >= target
    if cost_limit is not None:
        met = ratio < cost_limit
    return {
        "part": part,
        "what": what,
        "unit": "clips/s" if per_clip else "ms",
        "value": 1.0 / timing.median if per_clip else 1000.0 * timing.median,
        "baseline": baseline,
        "baseline_value": 1.0 / baseline_timing.median if per_clip else 1000.0 * baseline_timing.median,
        "ratio_kind": "cost" if cost_limit is not None else "speedup",
        "ratio": ratio,
        "target": (f">= {target:g}x" if target is not None else f"< {cost_limit:g}x" if cost_limit is not None else ""),
        "met": met,
        "timing": timing.as_dict(),
        "baseline_timing": baseline_timing.as_dict(),
        **extra,
    }


def _memory(timing: dict, before: str = ", ", after: str = "") -> str:
    peak = timing["peak_bytes"]
    return "" if peak is None else f"{before}peak {peak / 2**20:.0f} MiB{after}"


def format_table(rows: List[dict]) -> str:
    """The rows as a Markdown table."""
    lines = [
        "| part | measured | value | baseline | baseline value | ratio | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        timing = r["timing"]
        spread = f"{timing['min_s'] * 1000:.1f}-{timing['max_s'] * 1000:.1f} ms"
        if r["unit"] == "clips/s":
            spread += "/clip"
        met = "" if r["met"] is None else ("yes" if r["met"] else "no")
        lines.append(
            f"| {r['part']} | {r['what']} | {r['value']:.1f} {r['unit']} ({spread}{_memory(timing)}) "
            f"| {r['baseline']} | {r['baseline_value']:.1f} {r['unit']}{_memory(r['baseline_timing'], ' (', ')')} "
            f"| {r['ratio']:.2f}x {r['ratio_kind']} | {r['target']} | {met} |"
        )
    return "\n".join(lines)


def machine() -> Dict[str, object]:
    """Threads, CPUs, processor, torch version and CUDA availability of this machine."""
    return {
        "cpu_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "cuda": torch.cuda.is_available(),
    }
