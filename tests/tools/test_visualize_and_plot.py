"""tools/visualize.py and tools/plot.py on a tiny run."""

import os

import numpy as np
from PIL import Image
from tool_scripts import DEMO_CFG, demo_overrides, load_tool


def test_plot_reads_the_json_stats_of_a_tiny_run(tiny_run, tmp_path):
    out = tmp_path / "curves.png"
    assert load_tool("plot").main([tiny_run, tiny_run + "/", "--out", str(out)]) == 0
    picture = np.asarray(Image.open(out))
    assert picture.shape == (2 * 360, 640, 3)  # loss and lr
    assert ((picture == (31, 119, 180)).all(axis=-1).sum(), (picture == (255, 127, 14)).all(axis=-1).sum()) > (0, 0)


def test_plot_of_a_folder_without_logs_fails_clearly(tmp_path, capsys):
    assert load_tool("plot").main([str(tmp_path)]) == 2
    assert "no json_stats.log" in capsys.readouterr().err


def test_visualize_writes_target_mask_and_prediction_pictures(tiny_run, demo_data_dir, tmp_path):
    out = tmp_path / "vis"
    argv = ["--cfg", DEMO_CFG, "--num-clips", "2", "--scale", "2", "--out", str(out), *demo_overrides(demo_data_dir, tiny_run)]
    assert load_tool("visualize").main(argv) == 0
    names = sorted(os.listdir(out))
    assert len([n for n in names if n.endswith(".png")]) == 2
    assert {os.path.splitext(n)[1] for n in names} == {".png", ".gif", ".mp4"}
    picture = np.asarray(Image.open(out / names[0].replace(".gif", ".png")))
    # 4 columns of 64 * 2 pixels (+ gaps), one row per prediction-grid frame (4), then the
    # caption: 3 lines of at most 87 characters at this width.
    assert picture.shape[1] == 4 * (128 + 4) and picture.shape[0] == 14 + 4 * (128 + 4) + 3 * 12
    target = picture[14:142, 2 * 132:2 * 132 + 128]
    assert (target == 255).all(axis=-1).any(), "the target column has glyphs"
    gif = Image.open(out / [n for n in names if n.endswith(".gif")][0])
    assert gif.n_frames == 8 and gif.size == (128, 128)


def test_visualize_without_a_checkpoint_says_so(demo_data_dir, tmp_path, capsys):
    argv = ["--cfg", DEMO_CFG, *demo_overrides(demo_data_dir, str(tmp_path))]
    assert load_tool("visualize").main(argv) == 4  # checkpoint
    assert "no model to draw" in capsys.readouterr().err
