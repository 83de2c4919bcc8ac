#!/usr/bin/env python3
"""Training curves of one or more runs, overlaid, to a PNG:

    python tools/plot.py OUTPUT_DIR [OUTPUT_DIR ...] [--metrics loss lr] [--out curves.png]

Reads each OUTPUT_DIR/json_stats.log. One chart per metric (default: loss, lr and every
accuracy / error metric logged; top-5 is logged only with more than 5 classes), x in
epochs; accuracies and errors on an axis within 0-100 %; per run, the per-epoch means where
the metric has them, else the per-iteration values. --out defaults to FIRST_DIR/curves.png.
"""

import argparse
import os
import sys

from slowmask.utils.errors import UsageError, run_tool
from slowmask.utils.tool_args import tool_parser
from slowmask.visualization.curves import plot_runs
from slowmask.visualization.figure import save_png



def parse_args(argv=None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument("output_dirs", nargs="+", help="OUTPUT_DIR of each run")
    parser.add_argument("--metrics", nargs="*", default=[], help="metrics to draw (default: loss, lr, accuracies)")
    parser.add_argument("--out", default="", help="PNG to write (default: FIRST_DIR/curves.png)")
    return parser.parse_args(argv)


def run(argv) -> int:
    args = parse_args(argv)
    out = args.out or os.path.join(args.output_dirs[0], "curves.png")
    try:
        picture = plot_runs(args.output_dirs, args.metrics)
    except (FileNotFoundError, ValueError) as error:
        raise UsageError(str(error)) from error
    save_png(picture, out)
    sys.stdout.write(f"wrote {out}\n")
    return 0


def main(argv=None) -> int:
    return run_tool(run, argv)


if __name__ == "__main__":
    sys.exit(main())
