#!/usr/bin/env python3
"""The demo's table: random initialization against this run's pretraining.

    python tools/demo_summary.py DEMO_OUT

Reads what `make demo` wrote into DEMO_OUT: the probes of tools/probe.py --json
(probe_random_init.json, probe_pretrained.json) and the fine-tuning runs' test results
(finetune_random_init/ and finetune/, test_results.json). Prints k-NN, linear-probe,
attentive-probe and fine-tune top-1 of both, chance (100 / the number of classes) and the
majority baseline (the share of the test set's most frequent class), and writes them to
DEMO_OUT/summary.json as {"chance": .., "majority_baseline": .., "random_init": {"knn": ..,
"linear": .., "attentive": .., "finetune": ..}, "pretrained": {...}}, top-1 in percent.
With DEMO_OUT/probe_pixels.json (tools/probe.py --pixels) the raw pixels' probes are a row
too, "raw_pixels": {"knn": .., "linear": ..}: what frozen features are compared with.
"""

import argparse
import json
import os
import sys
from typing import Dict, List, Optional

from slowmask.utils.errors import DataError, run_tool
from slowmask.utils.tool_args import tool_parser

# Row of the table -> (probe file, fine-tuning folder) under DEMO_OUT.
RUNS = {
    "random_init": ("probe_random_init.json", "finetune_random_init"),
    "pretrained": ("probe_pretrained.json", "finetune"),
}
COLUMNS = ("knn", "linear", "attentive", "finetune")
# The raw pixels' row (tools/probe.py --pixels), shown when its file is there.
PIXELS_ROW, PIXELS_FILE = "raw_pixels", "probe_pixels.json"
TEST_RESULTS = "test_results.json"


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument("demo_out", help="the demo's output folder (output/demo)")
    return parser.parse_args(argv)


def _read(path: str) -> dict:
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} is missing: run `make demo` (it writes it) before the summary")
    with open(path) as f:
        return json.load(f)


def summarize(demo_out: str) -> Dict[str, object]:
    """The summary of the figures the demo's runs wrote into `demo_out`."""
    summary: Dict[str, object] = {}
    for name, (probe_file, finetune_dir) in RUNS.items():
        probes = _read(os.path.join(demo_out, probe_file))
        test = _read(os.path.join(demo_out, finetune_dir, TEST_RESULTS))
        summary["chance"] = probes["chance"]
        if "majority_baseline" in probes:
            summary["majority_baseline"] = probes["majority_baseline"]
        summary[name] = {**{key: probes[key] for key in COLUMNS[:-1] if key in probes}, "finetune": test["top1"]}
    if os.path.exists(os.path.join(demo_out, PIXELS_FILE)):
        probes = _read(os.path.join(demo_out, PIXELS_FILE))
        summary[PIXELS_ROW] = {key: probes[key] for key in COLUMNS[:-1] if key in probes}
    return summary


def table(summary: Dict[str, object]) -> str:
    """Rows random_init / pretrained / gain, a column per figure, chance and the majority
    baseline below."""
    columns = [c for c in COLUMNS if c in summary["pretrained"]]
    lines = [f"{'top-1 %':<12}" + "".join(f"{c:>10}" for c in columns)]
    for name in RUNS:
        lines.append(f"{name:<12}" + "".join(f"{summary[name][c]:>10.2f}" for c in columns))
    gains = [summary["pretrained"][c] - summary["random_init"][c] for c in columns]
    lines.append(f"{'gain':<12}" + "".join(f"{g:>+10.2f}" for g in gains))
    if PIXELS_ROW in summary:
        pixels = summary[PIXELS_ROW]
        cells = [f"{pixels[c]:>10.2f}" if c in pixels else " " * 10 for c in columns]
        lines.append(f"{PIXELS_ROW:<12}" + "".join(cells))
    lines.append(f"{'chance':<12}{summary['chance']:>10.2f}")
    if "majority_baseline" in summary:
        lines.append(f"{'majority':<12}{summary['majority_baseline']:>10.2f}")
    return "\n".join(lines)


def run(argv: List[str]) -> int:
    args = parse_args(argv)
    try:
        summary = summarize(args.demo_out)
    except (FileNotFoundError, KeyError, ValueError) as error:
        raise DataError(str(error)) from error
    path = os.path.join(args.demo_out, "summary.json")
    with open(path, "w") as f:
        json.dump(summary, f, indent=1)
    sys.stdout.write(table(summary) + f"\nwritten to {path}\n")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    return run_tool(run, argv)


if __name__ == "__main__":
    sys.exit(main())
