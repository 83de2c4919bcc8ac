#!/usr/bin/env python3
"""Write a tiny image dataset (class folders of PNG files) for the image demo recipes.

    python tools/make_demo_images.py OUT_DIR [--images-per-class N]

OUT_DIR/train/<class>/*.png and OUT_DIR/val/<class>/*.png, two classes (circle, square):
single frames of the demo videos' moving shapes. Then train an image recipe with
DATA.PATH_TO_DATA_DIR OUT_DIR, e.g. configs/demo/ViT_tiny_image_MAE_PT.yaml.
"""

import argparse
import logging
import os
from typing import List, Optional

import numpy as np
from PIL import Image

from slowmask.data.synthetic import render_moving_shape

CLASSES = ("circle", "square")


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


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", help="directory for train/ and val/")
    parser.add_argument("--images-per-class", type=int, default=32, help="training images per class (default 32)")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the shapes and colours")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    write_demo_images(args.out_dir, args.images_per_class, args.size, args.seed)


if __name__ == "__main__":
    main()
