"""The preflight checks the frozen teacher's keys and checkpoint of MASK.TARGET "teacher"
(MVD), naming the key, as it does the student's checkpoints."""

import os

import pytest

from slowmask.config import load_config
from slowmask.engine.preflight import PreflightError, preflight
from tool_scripts import REPO, load_tool

run_net = load_tool("run_net")
MVD_DEMO = os.path.join(REPO, "configs", "demo", "ViT_tiny_MVD_PT.yaml")
MVD_K400 = os.path.join(REPO, "configs", "k400_ViT_B_MVD_PT.yaml")


def test_a_missing_teacher_checkpoint_fails_the_check_naming_the_key(demo_data_dir, tmp_path, capsys):
    missing = tmp_path / "teacher" / "checkpoint_epoch_00020.pyth"
    status = run_net.main(["--cfg", MVD_DEMO, "--check", "DATA.PATH_TO_DATA_DIR", demo_data_dir,
                           "OUTPUT_DIR", str(tmp_path / "out"), "TEACHER.CHECKPOINT_FILE_PATH", str(missing)])
    assert status == 4
    assert capsys.readouterr().err == (
        f"PreflightError: the run cannot start: TEACHER.CHECKPOINT_FILE_PATH {missing} does not exist; give the path "
        "of a checkpoint file (.pyth) (rerun with --debug to see the traceback)\n")


def test_the_k400_mvd_recipe_without_a_teacher_checkpoint_fails_the_check(tmp_path):
    cfg = load_config(MVD_K400, ["NUM_GPUS", "0", "DATA.PATH_TO_DATA_DIR", str(tmp_path), "OUTPUT_DIR", str(tmp_path)])
    with pytest.raises(PreflightError) as raised:
        preflight(cfg)
    assert raised.value.exit_status == 4  # the first kind found: no config problem, no output one
    assert raised.value.problems[0] == (
        "MASK.TARGET 'teacher' needs TEACHER.CHECKPOINT_FILE_PATH, which is empty: set it to the teacher's "
        "checkpoint (.pyth), e.g. the last one of its pretraining run")


def test_a_teacher_architecture_that_is_not_there_is_named(tmp_path):
    teacher = tmp_path / "teacher.pyth"
    teacher.write_bytes(b"weights")
    cfg = load_config(MVD_K400, ["NUM_GPUS", "0", "DATA.PATH_TO_DATA_DIR", str(tmp_path), "OUTPUT_DIR", str(tmp_path),
                                 "TEACHER.CHECKPOINT_FILE_PATH", str(teacher), "TEACHER.CFG_FILE", "teachers/vit.yaml"])
    with pytest.raises(PreflightError) as raised:
        preflight(cfg)
    assert raised.value.problems[0] == (
        "TEACHER.CFG_FILE teachers/vit.yaml does not exist; give the yaml of the teacher's architecture (relative "
        "paths are read from the working directory)")
    assert not any("TEACHER.CHECKPOINT_FILE_PATH" in problem for problem in raised.value.problems)
