"""The preflight and the entry point's messages: each mistake a user makes in the first
week is fed in, and the text that names its cause and fix is checked."""

import os
import shutil
import subprocess
import sys

import pytest

from slowmask.config import load_config
from slowmask.data.datasets.video_list import read_video_list
from slowmask.engine.devices import DeviceError, check_devices
from slowmask.engine.preflight import PreflightError, preflight, splits_in_use
from tool_scripts import load_tool

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
run_net = load_tool("run_net")

PT_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_MaskFeat_PT.yaml")
FT_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_FT.yaml")
QUICK = ["DATA_LOADER.NUM_WORKERS", "0", "SOLVER.MAX_EPOCH", "1", "SOLVER.WARMUP_EPOCHS", "0.0", "LOG_PERIOD", "1",
         "DATA.TRAIN_CROP_SIZE", "32", "DATA.TEST_CROP_SIZE", "32", "DATA.DECODING_SHORT_SIZE", "40",
         "TRAIN.CHECKPOINT_FILE_PATH", ""]


def lists(demo_data_dir, tmp_path, splits=("train", "val", "test")):
    """A copy of the demo lists (not the videos) to spoil."""
    data = tmp_path / "lists"
    data.mkdir()
    for split in splits:
        shutil.copy(os.path.join(demo_data_dir, f"{split}.csv"), data / f"{split}.csv")
    return data


def spoil_label(list_path, label):
    lines = list_path.read_text().splitlines()
    path, _ = lines[0].rsplit(" ", 1)
    lines[0] = f"{path} {label}"
    list_path.write_text("\n".join(lines) + "\n")


def test_a_fine_tune_without_test_list_and_with_a_bad_label_fails_before_training(demo_data_dir, tmp_path, capsys):
    data = lists(demo_data_dir, tmp_path, ("train", "val"))
    spoil_label(data / "val.csv", 7)
    out = tmp_path / "out"
    status = run_net.main(["--cfg", FT_CFG, "DATA.PATH_TO_DATA_DIR", str(data), "OUTPUT_DIR", str(out), *QUICK])
    err = capsys.readouterr().err
    assert status == 3  # data
    assert "the run cannot start, 2 problems:" in err
    assert "val split (TEST.DATASET 'kinetics'" in err
    assert "1 of 4 labels lie outside [0, MODEL.NUM_CLASSES = 4), e.g. 7 for" in err
    assert "set MODEL.NUM_CLASSES to the number of classes (at least 8)" in err
    assert f"test split (TEST.DATASET 'kinetics', DATA.PATH_TO_DATA_DIR '{data}'): video list not found" in err
    assert "set TEST.ENABLE False to skip testing" in err
    assert not (out / "checkpoints").exists()


def test_choices_only_components_know_are_listed_before_any_split_is_built(tmp_path):
    cfg = load_config(PT_CFG, ["DATA.DECODING_BACKEND", "opencv", "TRAIN.NONFINITE_LOSS", "ignore",
                               "DATA.PATH_TO_DATA_DIR", str(tmp_path / "nowhere"), *QUICK])
    with pytest.raises(PreflightError) as caught:
        preflight(cfg)
    assert caught.value.problems == [
        "DATA.DECODING_BACKEND is 'opencv'; supported: 'pyav', 'decord', 'torchcodec', 'torchvision'",
        "TRAIN.NONFINITE_LOSS is 'ignore'; supported: 'stop', 'skip'",
    ]


def test_splits_follow_what_the_run_does():
    assert splits_in_use(load_config(PT_CFG)) == ["train"]
    assert splits_in_use(load_config(FT_CFG)) == ["train", "val", "test"]
    assert splits_in_use(load_config(FT_CFG, ["TRAIN.ENABLE", "False"])) == ["test"]


def test_relative_paths_without_a_prefix_are_named_as_such(demo_data_dir, tmp_path, monkeypatch):
    data = tmp_path / "lists"
    data.mkdir()
    rows = [line.rsplit(" ", 1) for line in open(os.path.join(demo_data_dir, "train.csv")).read().splitlines()]
    (data / "train.csv").write_text("".join(f"{os.path.relpath(p, demo_data_dir)} {label}\n" for p, label in rows))
    monkeypatch.chdir(tmp_path)
    cfg = load_config(PT_CFG, ["DATA.PATH_TO_DATA_DIR", str(data), *QUICK])
    with pytest.raises(PreflightError) as caught:
        preflight(cfg)
    (problem,) = caught.value.problems
    assert "none of the first 16 listed files exists, e.g. videos/train/circle_horizontal_000.mp4" in problem
    assert ("(DATA.PATH_PREFIX ''); the listed paths are relative, so they are read from the working directory "
            f"{tmp_path}; set DATA.PATH_PREFIX to the folder they are relative to") in problem
    preflight(load_config(PT_CFG, ["DATA.PATH_TO_DATA_DIR", str(data), "DATA.PATH_PREFIX", demo_data_dir, *QUICK]))


def test_a_custom_train_dataset_with_the_default_test_dataset_says_which_key(demo_data_dir, tmp_path):
    project = os.path.join(REPO, "projects", "custom_dataset", "configs", "MViT_tiny_MyParts_PT.yaml")
    data = tmp_path / "data"
    shutil.copytree(os.path.join(demo_data_dir, "videos"), data / "videos")
    cfg = load_config(project, ["DATA.PATH_TO_DATA_DIR", str(data), "TEST.DATASET", "kinetics", "TEST.ENABLE", "True",
                                "OUTPUT_DIR", str(tmp_path / "out"), *QUICK])
    with pytest.raises(PreflightError) as caught:
        preflight(cfg)
    (problem,) = caught.value.problems
    assert "TEST.DATASET ('kinetics') is not TRAIN.DATASET ('MyDataset'): set TEST.DATASET MyDataset" in problem


def test_a_header_line_is_named_as_a_header(tmp_path):
    (tmp_path / "train.csv").write_text("path,label\na.mp4,0\n")
    with pytest.raises(ValueError, match=r"line 1 \('path,label'\) looks like a header: .*remove it"):
        read_video_list(str(tmp_path / "train.csv"))


def test_a_missing_data_dir_names_the_key(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PreflightError, match="DATA.PATH_TO_DATA_DIR is empty: set it to the folder that holds the lists"):
        preflight(load_config(PT_CFG, QUICK))


def test_a_missing_checkpoint_to_start_from_fails_before_training(demo_data_dir, tmp_path):
    cfg = load_config(FT_CFG, ["DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(tmp_path), *QUICK,
                               "TRAIN.CHECKPOINT_FILE_PATH", "nowhere/pt.pyth"])
    with pytest.raises(PreflightError, match="TRAIN.CHECKPOINT_FILE_PATH nowhere/pt.pyth does not exist"):
        preflight(cfg)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
def test_gpus_without_cuda_fail_before_any_process_starts(demo_data_dir, tmp_path, capsys):
    cfg = load_config(PT_CFG, ["NUM_GPUS", "2", "TRAIN.BATCH_SIZE", "4"])
    with pytest.raises(DeviceError, match="NUM_GPUS is 2 but no CUDA device is visible; set NUM_GPUS 0"):
        check_devices(cfg)
    args = ["--cfg", PT_CFG, "DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(tmp_path), *QUICK]
    assert run_net.main([*args, "NUM_GPUS", "2", "TRAIN.BATCH_SIZE", "4"]) == 2
    err = capsys.readouterr().err
    assert "NUM_GPUS is 2 but no CUDA device is visible; set NUM_GPUS 0 to run on the CPU" in err
    assert "Traceback" not in err and "NCCL" not in err


def test_overrides_may_come_before_the_config_file():
    args = run_net.parse_args(["RNG_SEED", "5", "--cfg", PT_CFG, "DATA.NUM_FRAMES", "8", "--opts", "LOG_PERIOD", "3"])
    cfg = run_net.config_from_args(args)
    assert (cfg.RNG_SEED, cfg.DATA.NUM_FRAMES, cfg.LOG_PERIOD) == (5, 8, 3)
    with pytest.raises(SystemExit):
        run_net.parse_args(["--cfg", PT_CFG, "--num-gpus", "2"])


def test_check_runs_only_the_preflight(demo_data_dir, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["--cfg", FT_CFG, "--check", "DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(out), *QUICK]
    assert run_net.main(args) == 0
    assert "preflight passed: train (16 items), val (4 items), test (24 items)" in capsys.readouterr().out
    assert not out.exists()


def test_a_finished_run_says_so_and_a_checkpoint_to_start_from_is_named_when_ignored(demo_data_dir, tmp_path):
    out = tmp_path / "out"
    args = ["--cfg", PT_CFG, "DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(out), *QUICK,
            "TRAIN.BATCH_SIZE", "8"]
    assert run_net.main(args) == 0
    first = out / "checkpoints" / "checkpoint_epoch_00001.pyth"
    assert run_net.main([*args, "TRAIN.CHECKPOINT_FILE_PATH", str(first)]) == 0
    log = (out / "stdout.log").read_text()
    assert f"TRAIN.CHECKPOINT_FILE_PATH {first} is not loaded" in log
    assert (f"nothing to train: {out / 'checkpoints'} already holds the checkpoint of the last epoch "
            "(SOLVER.MAX_EPOCH 1); raise SOLVER.MAX_EPOCH to train further") in log
    assert "training epochs 2..1" not in log
    # The whole config is a file; the log names only what the files and command line set.
    assert load_config(str(out / "config.yaml")).DATA.PATH_TO_DATA_DIR == demo_data_dir
    assert f"output directory: {out}" in log and "DATA.TRAIN_CROP_SIZE=32" in log
    assert "MVIT:\n" not in log


def test_bad_data_stops_with_one_line_and_the_traceback_in_the_log(demo_data_dir, tmp_path):
    data = lists(demo_data_dir, tmp_path, ("train",))
    lines = (data / "train.csv").read_text().splitlines()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    for row in (1, 2, 3, 5, 6, 9):  # the preflight decodes items 0, 8 and 15
        lines[row] = f"{broken} {lines[row].rsplit(' ', 1)[1]}"
    (data / "train.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "tools", "run_net.py"), "--cfg", PT_CFG, "DATA.PATH_TO_DATA_DIR", str(data),
         "OUTPUT_DIR", str(out), *QUICK, "TRAIN.BATCH_SIZE", "8"],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 3, result.stderr[-2000:]
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("BadDataError: ") and "DATA_LOADER.MAX_BAD_FRACTION" in line
    assert line.endswith(f"(traceback in {out / 'stdout.log'})")
    assert "Traceback (most recent call last)" in (out / "stdout.log").read_text()
