"""Config checks of the method recipes: impossible masks and patches fail at load time."""

import os

import pytest

from slowmask.config import load_config
from slowmask.config import ConfigError

DEMO = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "demo")


@pytest.mark.parametrize("recipe", ["ViT_tiny_MAE_PT", "ViT_tiny_image_SimMIM_PT"])
def test_mask_ratio_one(recipe):
    with pytest.raises(ConfigError, match=r"AUG.MASK_RATIO must lie in \(0, 1\), got 1.0"):
        load_config(os.path.join(DEMO, recipe + ".yaml"), ["AUG.MASK_RATIO", "1.0"])


def test_image_patch_not_dividing_the_crop():
    with pytest.raises(ConfigError, match=r"DATA.TRAIN_CROP_SIZE\^2 = \[30, 30\] is not divided evenly by the 2-D"):
        load_config(os.path.join(DEMO, "ViT_tiny_image_MAE_PT.yaml"), ["DATA.TRAIN_CROP_SIZE", "30"])


def test_video_patch_not_dividing_the_clip():
    with pytest.raises(ConfigError, match="is not divided evenly by MVIT.PATCH_STRIDE"):
        load_config(os.path.join(DEMO, "ViT_tiny_VideoMAE_PT.yaml"), ["DATA.TRAIN_CROP_SIZE", "72"])

