#!/usr/bin/env python3
"""Turn downloaded Kinetics videos (or any folder-per-class tree) into trainable lists:

    python tools/prepare_kinetics.py --videos DIR --annotations train.csv validate.csv [test.csv] --out DIR
    python tools/prepare_kinetics.py --videos DIR --folders [--val-fraction 0.1 --test-fraction 0.1] --out DIR

With --annotations, the official CSVs (label,youtube_id,time_start,time_end,split) are
matched to files named <youtube_id>_<start:06d>_<end:06d>.<ext> (or <youtube_id>.<ext>)
anywhere under --videos. With --folders, --videos is DIR/<split>/<class>/<video> (split:
train, val, test) or DIR/<class>/<video>, all training videos unless --val-fraction /
--test-fraction hold out that share of each class (drawn with --seed: a rerun gives the
same split). --short-side 320 re-encodes every video into OUT/videos with that short side
(PyAV, --jobs processes). Writes OUT/train.csv and, for the splits that have videos,
val.csv and test.csv; classids.json, missing.txt and unreadable.txt; a second run skips the
videos already done.
Then train with DATA.PATH_TO_DATA_DIR OUT.
"""

import argparse
import logging
import os
import sys

from slowmask.utils.errors import DataError, run_tool
from slowmask.utils.tool_args import tool_parser
from slowmask.prepare import entries_from_annotations, entries_from_folders, hold_out, prepare_dataset

logger = logging.getLogger("slowmask.tools.prepare_kinetics")


def parse_args(argv=None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument("--videos", required=True, help="folder of the downloaded videos")
    layout = parser.add_mutually_exclusive_group(required=True)
    layout.add_argument("--annotations", nargs="+", help="official Kinetics CSV files")
    layout.add_argument("--folders", action="store_true", help="folder-per-class layout")
    parser.add_argument("--val-fraction", type=float, default=0.0,
                        help="with --folders and no split folders: share of each class's videos for val.csv")
    parser.add_argument("--test-fraction", type=float, default=0.0,
                        help="with --folders and no split folders: share of each class's videos for test.csv")
    parser.add_argument("--seed", type=int, default=0, help="seed of the hold-out draw")
    parser.add_argument("--out", required=True, help="folder for the lists (and re-encoded videos)")
    parser.add_argument("--short-side", type=int, default=0, help="re-encode to this short side (0: keep the files)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel processes")
    return parser.parse_args(argv)


def run(argv) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(levelname)s] %(name)s: %(message)s")
    try:
        if args.folders:
            entries = hold_out(entries_from_folders(args.videos), args.val_fraction, args.test_fraction, args.seed)
        elif args.val_fraction or args.test_fraction:
            raise ValueError(
                "--val-fraction / --test-fraction split a --folders tree; the annotation CSVs name the splits"
            )
        else:
            entries = entries_from_annotations(args.annotations, args.videos)
    except (FileNotFoundError, ValueError) as error:
        raise DataError(str(error)) from error
    report = prepare_dataset(entries, args.out, short_side=args.short_side, jobs=args.jobs)
    logger.info(
        "%d classes; lists: %s; %d videos processed now, %d done earlier; %d missing (missing.txt), "
        "%d unreadable (unreadable.txt)",
        len(report.classes), ", ".join(report.lists.values()) or "none", report.processed, report.reused,
        len(report.missing), len(report.unreadable),
    )
    return 0


def main(argv=None) -> int:
    return run_tool(run, argv)


if __name__ == "__main__":
    sys.exit(main())
