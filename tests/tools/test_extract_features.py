"""tools/extract_features.py: one row per input, resumable, unreadable inputs listed."""

import csv
import os

import numpy as np
from tool_scripts import DEMO_CFG, demo_overrides, load_tool

from slowmask.engine import checkpoint


def test_one_row_per_video_and_a_second_run_skips_what_is_done(tiny_run, demo_data_dir, tmp_path, caplog):
    videos = [line.split()[0] for line in open(os.path.join(demo_data_dir, "val.csv"))]
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(videos + [str(broken)]) + "\n")
    out = tmp_path / "features"
    argv = ["--cfg", DEMO_CFG, "--checkpoint", checkpoint.last_checkpoint(tiny_run), "--videos", str(listing),
            "--out", str(out), "--per-token", "--batch-size", "3", *demo_overrides(demo_data_dir, tiny_run)]
    tool = load_tool("extract_features")
    assert tool.main(argv) == 0
    features = np.load(out / "features.npy")
    assert features.shape == (len(videos), 64) and np.isfinite(features).all()
    with open(out / "index.csv") as f:
        assert [row["path"] for row in csv.DictReader(f)] == videos
    assert str(broken) in (out / "failed.txt").read_text()
    tokens = np.load(out / "tokens" / os.listdir(out / "tokens")[0])
    assert tokens.shape == (4 * 8 * 8, 64)  # the prediction grid of the demo model
    stamps = {name: os.stat(out / "pooled" / name).st_mtime_ns for name in os.listdir(out / "pooled")}
    caplog.clear()
    assert tool.main(argv) == 0
    assert {name: os.stat(out / "pooled" / name).st_mtime_ns for name in os.listdir(out / "pooled")} == stamps
    assert f"0 inputs now, {len(videos)} earlier" in (out / "stdout.log").read_text().splitlines()[-1]


def test_a_missing_list_fails_clearly(tiny_run, demo_data_dir, tmp_path, capsys):
    argv = ["--cfg", DEMO_CFG, "--checkpoint", checkpoint.last_checkpoint(tiny_run), "--videos",
            str(tmp_path / "none.txt"), "--out", str(tmp_path / "f"), *demo_overrides(demo_data_dir, tiny_run)]
    assert load_tool("extract_features").main(argv) == 3  # data
    assert "video list not found" in capsys.readouterr().err
