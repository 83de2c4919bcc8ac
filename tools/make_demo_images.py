#!/usr/bin/env python3
"""Write a tiny image dataset (class folders of PNG files) for the image demo recipes.

    python tools/make_demo_images.py OUT_DIR [--source shapes|digits] [--size S] \
        [--images-per-class N] [--labelled-per-class N]

--source shapes (default): OUT_DIR/train/<class>/*.png and OUT_DIR/val/<class>/*.png, two
classes (circle, square): single frames of the demo videos' moving shapes,
--images-per-class of them for training and a quarter as many for val.
--source digits: scikit-learn's 1797 scans of handwritten digits (8x8, real, nothing
downloaded), upsampled to S x S pixels: OUT_DIR/{train,val,test}/<digit>/*.png, a fixed
split stratified by digit (1197 / 300 / 300, slowmask/data/digits.py); with
--labelled-per-class N, OUT_DIR/few_labels/{train,val,test}.csv list N training images
per digit and every val and test image, for few-label fine-tuning.
Then train an image recipe with DATA.PATH_TO_DATA_DIR OUT_DIR, e.g.
configs/demo/ViT_tiny_image_MAE_PT.yaml.
"""

import argparse
import logging
import os
import sys
from typing import List, Optional

import numpy as np
from PIL import Image

from slowmask.data.digits import load_digit_scans, write_digit_images
from slowmask.data.synthetic import render_moving_shape
from slowmask.utils.errors import run_tool

CLASSES = ("circle", "square")
SOURCES = ("shapes", "digits")


def write_demo_images(out_dir: str, images_per_class: int = 32, size: int = 64, seed: int = 0) -> None:
    """train/ with `images_per_class` and val/ with a quarter as many images per class."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", images_per_class), ("val", max(1, images_per_class // 4))):
        for name in CLASSES:
            folder = os.path.join(out_dir, split, name)
            os.makedirs(folder, exist_ok=True)
            for i in range(count):
                frame = render_moving_shape(name, "horizontal", rng, num_frames=1, height=size, width=size)[0]
                Image.fromarray(frame).save(os.path.join(folder, f"{i:04d}.png"))
    logging.info("wrote %d classes of images to %s", len(CLASSES), out_dir)


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", help="directory for train/ and val/ (and test/ of the digits)")
    parser.add_argument("--source", choices=SOURCES, default="shapes", help="what the images show (default shapes)")
    parser.add_argument("--images-per-class", type=int, default=32,
                        help="training images per class of the shapes (default 32)")
    parser.add_argument("--labelled-per-class", type=int, default=0,
                        help="digits: training images per digit listed in few_labels/train.csv (default 0: none)")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the shapes and colours (the digits' split is fixed)")
    args = parser.parse_args(argv)
    if args.size < 8:
        parser.error(f"--size must be at least 8 pixels, got {args.size}")
    return args


def run(argv: Optional[List[str]]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.source == "digits":
        scans, labels = load_digit_scans()
        write_digit_images(args.out_dir, scans, labels, args.size, args.labelled_per_class)
    else:
        write_demo_images(args.out_dir, args.images_per_class, args.size, args.seed)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    return run_tool(run, argv)


if __name__ == "__main__":
    sys.exit(main())
