"""--folders with --val-fraction / --test-fraction: a seeded, per-class hold-out, so a
tree of training videos gives train, val and test lists."""

import os

import numpy as np
import pytest

from slowmask.data.video_writer import write_video
from slowmask.prepare import VideoEntry, hold_out
from tool_scripts import load_tool

prepare_kinetics = load_tool("prepare_kinetics")


def entries(counts):
    return [VideoEntry("train", label, f"/v/{label}/{k}.mp4", f"{label}/{k}.mp4")
            for label, count in counts.items() for k in range(count)]


def test_each_class_gives_its_share_and_the_draw_is_seeded():
    split = hold_out(entries({"a": 10, "b": 4}), val_fraction=0.2, test_fraction=0.3, seed=3)
    counts = {(e.label, e.split): sum(1 for f in split if (f.label, f.split) == (e.label, e.split)) for e in split}
    assert counts == {("a", "train"): 5, ("a", "val"): 2, ("a", "test"): 3,
                      ("b", "train"): 2, ("b", "val"): 1, ("b", "test"): 1}
    assert split == hold_out(entries({"a": 10, "b": 4}), 0.2, 0.3, seed=3)
    assert [e.split for e in split] != [e.split for e in hold_out(entries({"a": 10, "b": 4}), 0.2, 0.3, seed=4)]
    assert hold_out(entries({"a": 3}), 0.0, 0.0) == entries({"a": 3})


@pytest.mark.parametrize("val, test", [(1.0, 0.0), (0.6, 0.4), (-0.1, 0.0)])
def test_fractions_that_leave_no_training_are_refused(val, test):
    with pytest.raises(ValueError, match="each must be in \\[0, 1\\) and their sum below 1"):
        hold_out(entries({"a": 4}), val, test)


def test_the_tool_writes_train_val_and_test_lists(tmp_path, capsys):
    for label in ("circles", "squares"):
        for k in range(4):
            path = tmp_path / "videos" / label / f"{k}.mp4"
            os.makedirs(path.parent, exist_ok=True)
            write_video(str(path), np.full((4, 32, 32, 3), 60 * k, dtype=np.uint8), fps=10)
    out = tmp_path / "out"
    args = ["--videos", str(tmp_path / "videos"), "--folders", "--val-fraction", "0.25", "--test-fraction", "0.25",
            "--out", str(out), "--jobs", "1"]
    assert prepare_kinetics.main(args) == 0
    lines = {split: (out / f"{split}.csv").read_text().splitlines() for split in ("train", "val", "test")}
    assert {split: len(rows) for split, rows in lines.items()} == {"train": 4, "val": 2, "test": 2}
    assert sorted(row.split()[-1] for row in lines["val"]) == ["0", "1"]
    assert sorted(row.split()[-1] for row in lines["test"]) == ["0", "1"]


def test_fractions_with_split_folders_are_a_usage_error(tmp_path, capsys):
    path = tmp_path / "videos" / "val" / "circles" / "0.mp4"
    os.makedirs(path.parent)
    write_video(str(path), np.zeros((4, 32, 32, 3), dtype=np.uint8), fps=10)
    status = prepare_kinetics.main(["--videos", str(tmp_path / "videos"), "--folders", "--val-fraction", "0.5",
                                    "--out", str(tmp_path / "out")])
    assert status == 3
    assert "already have a val split (split folders)" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_every_class_keeps_a_training_video():
    """round(2 * 0.3) = 1 each would take both videos of a 2-video class."""
    split = hold_out(entries({"a": 2, "b": 1}), val_fraction=0.3, test_fraction=0.3)
    assert sorted((e.label, e.split) for e in split) == [("a", "train"), ("a", "val"), ("b", "train")]
