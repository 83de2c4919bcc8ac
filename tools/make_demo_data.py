#!/usr/bin/env python3
"""Write a tiny video dataset of moving shapes or digits with train/val/test.csv.

    python tools/make_demo_data.py OUT_DIR [--videos-per-class N] [--classes motion_axis]

--classes shape_motion (default): circle or square, moving horizontally or vertically;
motion_axis (make demo's): either shape moving back and forth at 0, 45, 90 or 135 degrees;
moving_digits (make demo-real's): scikit-learn's scans of handwritten digits moving in a
random direction and bouncing, the class being the digit (10 classes); digit_motion: a
digit moving horizontally or vertically, the class being both (20 classes). The digits'
val and test videos show other writers' scans than the training videos
(slowmask/data/digits.py).

Then train on it with DATA.PATH_TO_DATA_DIR OUT_DIR.
"""

import argparse
import logging
import sys
from typing import List, Optional

from slowmask.data.digits import DIGIT_CLASS_SETS, digit_renderers, load_digit_scans
from slowmask.data.synthetic import CLASS_SETS, write_demo_dataset
from slowmask.utils.errors import run_tool


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", help="directory for the videos and the csv files")
    parser.add_argument("--videos-per-class", type=int, default=8, help="training videos per class (default 8)")
    parser.add_argument("--unlabelled-per-class", type=int, default=0,
                        help="more training videos per class that no list names, for pretraining (default 0)")
    parser.add_argument("--val-per-class", type=int, default=0,
                        help="validation videos per class (default 0: a quarter of --videos-per-class)")
    parser.add_argument("--test-per-class", type=int, default=0,
                        help="test videos per class (default 0: a quarter of --videos-per-class)")
    parser.add_argument("--num-frames", type=int, default=48, help="frames per video (default 48)")
    parser.add_argument("--height", type=int, default=64, help="frame height, even (default 64)")
    parser.add_argument("--width", type=int, default=80, help="frame width, even (default 80)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the shapes, colours and speeds")
    parser.add_argument("--classes", choices=sorted(CLASS_SETS) + list(DIGIT_CLASS_SETS), default="shape_motion",
                        help="the set of classes (default shape_motion; see slowmask/data/synthetic.py and digits.py)")
    return parser.parse_args(argv)


def run(argv: Optional[List[str]]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    renderers = digit_renderers(*load_digit_scans(), args.classes) if args.classes in DIGIT_CLASS_SETS else None
    write_demo_dataset(
        args.out_dir,
        videos_per_class=args.videos_per_class,
        num_frames=args.num_frames,
        height=args.height,
        width=args.width,
        seed=args.seed,
        unlabelled_per_class=args.unlabelled_per_class,
        val_per_class=args.val_per_class,
        test_per_class=args.test_per_class,
        classes=args.classes,
        renderers=renderers,
    )
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    return run_tool(run, argv)


if __name__ == "__main__":
    sys.exit(main())
