"""OmniMAE end to end on the CPU: the tiny recipe trains one model on the demo videos and
the demo images, batch by batch from one or the other, and its loss falls."""

import os

from slowmask.config import load_config
from slowmask.engine.train import train
from slowmask.utils.logging import read_json_stats
from tool_scripts import REPO, load_tool

DEMO_CFG = os.path.join(REPO, "configs", "demo", "ViT_tiny_OmniMAE_PT.yaml")


def test_tiny_omnimae_trains_on_videos_and_images_with_falling_loss(demo_data_dir, tmp_path):
    images = tmp_path / "images"
    load_tool("make_demo_images").write_demo_images(str(images), images_per_class=4, size=64)
    image_part = ["TRAIN.DATASET", "imagefolder", "DATA.PATH_TO_DATA_DIR", str(images), "TRAIN.BATCH_SIZE", 4,
                  "DATA.NUM_FRAMES", 1, "MULTI_DATASET.REPEAT_FRAMES", 2, "DATA.DECODING_SHORT_SIZE", 0,
                  "AUG.MASK_RATIO", 0.9, "AUG.MASK_WINDOW_SIZE", [1, 4, 4]]
    out = tmp_path / "run"
    cfg = load_config(DEMO_CFG, [
        "DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(out), "DATA_LOADER.NUM_WORKERS", "0",
        "LOG_PERIOD", "1", "TRAIN.BATCH_SIZE", "4", "MULTI_DATASET.REPEAT_FACTORS", "[0.5, 1.0]",
        "MULTI_DATASET.OVERRIDES", repr([["TRAIN.DATASET", "kinetics"], image_part]),
        "SOLVER.MAX_EPOCH", "20", "SOLVER.BASE_LR", "0.001", "SOLVER.WARMUP_EPOCHS", "0.5",
        "TRAIN.CHECKPOINT_PERIOD", "100",
    ])
    train(cfg)
    iterations = [s for s in read_json_stats(str(out)) if s["_type"] == "train_iter"]
    assert len(iterations) == 20 * 4  # videos: int(0.5 * 16 // 4) = 2 batches per epoch; images: 8 // 4 = 2
    # 61 masked tokens of each of 4 videos, or 14 of each of 4 images.
    assert {s["masked_tokens"] for s in iterations[:1]} <= {4 * 61, 4 * 14}
    losses = [s["loss"] for s in iterations]
    # The first and the last two epochs (each 2 video and 2 image batches).
    first, last = sum(losses[:4]) / 4, sum(losses[-8:]) / 8
    assert last < 0.9 * first, losses
