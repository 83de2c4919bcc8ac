"""tools/model_info.py's figures keep three significant digits: a tiny model's GFLOPs
are not "0.0"."""

import os

import pytest
from tool_scripts import REPO, load_tool

from slowmask.utils.model_info import significant

FT_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_FT.yaml")


@pytest.mark.parametrize("value, text", [(71.3826, "71.4"), (0.005981, "0.00598"), (0.102449, "0.102"),
                                         (1234.5, "1234"), (180.6, "181"), (0.0, "0"), (-2.345, "-2.35")])
def test_figures_keep_three_significant_digits(value, text):
    assert significant(value) == text


def test_a_tiny_model_shows_its_gflops_and_parameters(capsys):
    assert load_tool("model_info").main(["--cfg", FT_CFG, "DATA.NUM_FRAMES", "4", "DATA.TRAIN_CROP_SIZE", "32"]) == 0
    out = capsys.readouterr().out
    assert "parameters: 194,500 (0.195 M)" in out  # the position tables follow the input: 4 x 32 x 32
    assert "GFLOPs: 0.0110 (fvcore;" in out
