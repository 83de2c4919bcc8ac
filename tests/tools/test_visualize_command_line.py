"""tools/visualize.py after a pretraining on a folder of videos (no val list): clips from
train with a warning; counts and paths of the wrong kind refused in one line."""

import os

import pytest
from tool_scripts import REPO, load_tool

from slowmask.config import load_config
from slowmask.checkpoint import save_checkpoint
from slowmask.methods import build_model

visualize = load_tool("visualize")

FOLDER_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_MaskFeat_unlabelled_PT.yaml")


@pytest.fixture(scope="module")
def folder_run(demo_data_dir, tmp_path_factory):
    """Overrides of a video_folder pretraining on the demo videos, with its checkpoint."""
    out_dir = tmp_path_factory.mktemp("folder_run")
    overrides = ["DATA.PATH_TO_DATA_DIR", os.path.join(demo_data_dir, "videos"), "OUTPUT_DIR", str(out_dir),
                 "DATA_LOADER.NUM_WORKERS", "0"]
    path = str(out_dir / "model.pyth")
    save_checkpoint(path, build_model(load_config(FOLDER_CFG, overrides)), None, 0, "")
    return overrides + ["TRAIN.CHECKPOINT_FILE_PATH", path]


def test_without_a_val_list_the_clips_come_from_train_with_a_warning(folder_run, demo_data_dir, tmp_path, capsys):
    argv = ["--cfg", FOLDER_CFG, "--num-clips", "1", "--scale", "1", "--out", str(tmp_path), *folder_run,
            "--formats"]
    assert visualize.main(argv) == 0
    log = capsys.readouterr().out  # the run's log handlers write to the console
    val_list = os.path.join(demo_data_dir, "videos", "val.csv")
    warnings = [line.split("] ", 1)[-1] for line in log.splitlines() if "[WARNING]" in line]
    assert warnings == [f"slowmask.tools.visualize: video list not found: {val_list}: drawing the clips from the "
                        "train split instead (--split chooses)"]
    assert [name.endswith(".png") for name in os.listdir(tmp_path)] == [True]
    assert "loaded weights from" in log and "resumed from" not in log


def test_an_explicit_split_without_its_list_is_a_data_error(folder_run, tmp_path, capsys):
    argv = ["--cfg", FOLDER_CFG, "--split", "val", "--out", str(tmp_path), *folder_run]
    assert visualize.main(argv) == 3
    assert "ListNotFoundError: video list not found:" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("flag, value, message", [
    ("--num-clips", "-3", "argument --num-clips: -3 is not a count: give 1 or more"),
    ("--scale", "0", "argument --scale: 0 is not a count: give 1 or more"),
])
def test_a_count_below_one_is_a_usage_error(flag, value, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        visualize.main(["--cfg", FOLDER_CFG, flag, value])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(message)


def test_out_naming_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert visualize.main(["--cfg", FOLDER_CFG, "--out", str(tmp_path / "file")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--out {tmp_path / 'file'} is a file, not a folder" in err


def test_a_folder_as_checkpoint_is_one_line_with_status_4(folder_run, tmp_path, capsys):
    argv = ["--cfg", FOLDER_CFG, "--out", str(tmp_path / "vis"), *folder_run, "TRAIN.CHECKPOINT_FILE_PATH",
            str(tmp_path)]
    assert visualize.main(argv) == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"CheckpointError: {tmp_path} is a folder, not a checkpoint" in err
