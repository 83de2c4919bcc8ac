"""The preflight refuses, before any epoch: an OUTPUT_DIR (or its checkpoints/) that
cannot be written (status 6), a train split that gives some process no batch (status 3), and
learning rates that are not finite or absurdly large (status 2); one line each."""

import os
import re

import pytest

from slowmask.config import ConfigError, load_config
from slowmask.engine.preflight import PreflightError, preflight
from tool_scripts import DEMO_CFG, REPO, load_tool

run_net = load_tool("run_net")
FT_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_FT.yaml")


@pytest.fixture
def unwritable_folder(tmp_path) -> str:
    """A folder in which creating a file fails: read-only for a user; for root, who
    writes through permissions, a sysfs folder."""
    if os.geteuid() != 0:
        folder = tmp_path / "read_only"
        folder.mkdir(mode=0o555)
        return str(folder)
    if not os.path.isdir("/sys/kernel"):
        pytest.skip("running as root without /sys/kernel: no folder refuses root's writes")
    return "/sys/kernel"


# Where run_tool says the traceback went, after the message (its log file is a previous
# run's in this test process: the refused run opens none).
TRACEBACK_NOTE = re.compile(r" \((rerun with --debug to see the traceback|traceback in \S+)\)$")


def refused(capsys, demo_data_dir, output_dir):
    """(status, stderr lines without the traceback note) of a run on the demo data into `output_dir`."""
    status = run_net.main(["--cfg", DEMO_CFG, "DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(output_dir)])
    return status, [TRACEBACK_NOTE.sub("", line) for line in capsys.readouterr().err.splitlines()]


def test_output_dir_that_is_a_file_or_a_dangling_link_is_refused(demo_data_dir, tmp_path, capsys):
    a_file = tmp_path / "out.txt"
    a_file.write_text("notes\n")
    dangling = tmp_path / "out_link"
    dangling.symlink_to(tmp_path / "gone")
    lead = "PreflightError: the run cannot start: "
    assert refused(capsys, demo_data_dir, a_file) == (6, [
        f"{lead}OUTPUT_DIR {a_file}: {a_file} is a file, not a folder; give a folder (it is created if missing)"])
    assert refused(capsys, demo_data_dir, dangling) == (6, [
        f"{lead}OUTPUT_DIR {dangling} is a symbolic link to {tmp_path / 'gone'}, which does not exist; create that "
        "folder or give another OUTPUT_DIR"])
    assert a_file.read_text() == "notes\n" and sorted(os.listdir(tmp_path)) == ["out.txt", "out_link"]


def test_unwritable_output_dir_is_refused_before_anything_is_written(demo_data_dir, unwritable_folder, capsys):
    output_dir = os.path.join(unwritable_folder, "run")
    status, err = refused(capsys, demo_data_dir, output_dir)
    assert status == 6 and len(err) == 1
    assert err[0].startswith(f"PreflightError: the run cannot start: OUTPUT_DIR {output_dir} (it would be created in "
                             f"{unwritable_folder}) cannot be written: ")
    assert "make it writable for this user or give another OUTPUT_DIR" in err[0]
    assert not os.path.exists(output_dir)


def test_unwritable_checkpoints_folder_is_refused_before_the_first_epoch(demo_data_dir, unwritable_folder, tmp_path,
                                                                         capsys):
    (tmp_path / "checkpoints").symlink_to(unwritable_folder)
    status, err = refused(capsys, demo_data_dir, tmp_path)
    assert status == 6 and len(err) == 1
    assert err[0].startswith(f"PreflightError: the run cannot start: OUTPUT_DIR/checkpoints {tmp_path / 'checkpoints'} "
                             "cannot be written: ")
    assert sorted(os.listdir(tmp_path)) == ["checkpoints"]  # no log, no config: nothing ran


@pytest.mark.parametrize("batch_size", ["64", "1000000000000"])
def test_a_batch_larger_than_the_train_split_is_refused_naming_the_numbers(demo_data_dir, tmp_path, batch_size):
    cfg = load_config(DEMO_CFG, ["DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(tmp_path),
                                 "TRAIN.BATCH_SIZE", batch_size])
    with pytest.raises(PreflightError) as raised:
        preflight(cfg)
    assert raised.value.exit_status == 3
    assert str(raised.value) == (
        f"the run cannot start: train split (TRAIN.DATASET 'kinetics', DATA.PATH_TO_DATA_DIR '{demo_data_dir}'): "
        f"16 items give 16 to each of 1 process(es), fewer than one batch of {batch_size} per process "
        f"(TRAIN.BATCH_SIZE {batch_size} / 1); the last partial batch is dropped, so no training step would run: "
        "set TRAIN.BATCH_SIZE at most 16 or add items")


def test_an_evaluation_split_with_fewer_videos_than_processes_passes(demo_data_dir, tmp_path):
    # evaluation keeps partial batches; a process without a video still joins the gather
    cfg = load_config(FT_CFG, ["DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(tmp_path), "NUM_SHARDS", "8",
                               "TRAIN.BATCH_SIZE", "8", "TEST.BATCH_SIZE", "8", "TRAIN.CHECKPOINT_FILE_PATH", "",
                               "DATA.TRAIN_CROP_SIZE", "32", "DATA.TEST_CROP_SIZE", "32", "DATA.DECODING_SHORT_SIZE", "40"])
    reports = preflight(cfg)
    assert [(report.split, report.items) for report in reports] == [("train", 16), ("val", 4), ("test", 4 * 6)]


def test_a_batch_the_split_fills_passes(demo_data_dir, tmp_path):
    cfg = load_config(DEMO_CFG, ["DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(tmp_path),
                                 "TRAIN.BATCH_SIZE", "16"])
    assert [(report.split, report.items) for report in preflight(cfg)] == [("train", 16)]


@pytest.mark.parametrize("key, value, shown, interval", [
    ("SOLVER.BASE_LR", "1e309", "inf", "(0, 10]"),
    ("SOLVER.BASE_LR", "1e38", "1e+38", "(0, 10]"),
    ("SOLVER.BASE_LR", "0", "0.0", "(0, 10]"),
    ("SOLVER.COSINE_END_LR", "-1e-06", "-1e-06", "[0, 10]"),
    ("SOLVER.WARMUP_START_LR", "1e309", "inf", "[0, 10]"),
])
def test_learning_rates_must_be_finite_and_bounded(key, value, shown, interval):
    with pytest.raises(ConfigError) as raised:
        load_config(DEMO_CFG, [key, value])
    assert str(raised.value) == f"{key} is {shown}; a learning rate must be a finite number in {interval}"
    assert raised.value.exit_status == 2


def test_learning_rates_at_the_bounds_load():
    cfg = load_config(DEMO_CFG, ["SOLVER.BASE_LR", "10", "SOLVER.COSINE_END_LR", "0", "SOLVER.WARMUP_START_LR", "0"])
    assert (cfg.SOLVER.BASE_LR, cfg.SOLVER.COSINE_END_LR, cfg.SOLVER.WARMUP_START_LR) == (10.0, 0.0, 0.0)
