"""One run per OUTPUT_DIR: a second run fails at once naming the holder, a dead holder's
lock is taken over, and resuming with another recipe stops unless allowed."""

import json
import os
import re
import socket
import subprocess

import pytest

from slowmask.config import load_config
from slowmask.engine.train import ResumeConflict, check_resumed_config
from slowmask.utils.output_files import LOCK_FILE, OutputDirInUse, RunLock, hold_output_dir
from tool_scripts import load_tool

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
run_net = load_tool("run_net")

PT_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_MaskFeat_PT.yaml")
QUICK = ["DATA_LOADER.NUM_WORKERS", "0", "SOLVER.MAX_EPOCH", "1", "SOLVER.WARMUP_EPOCHS", "0.0", "LOG_PERIOD", "1",
         "DATA.TRAIN_CROP_SIZE", "32", "DATA.TEST_CROP_SIZE", "32", "DATA.DECODING_SHORT_SIZE", "40",
         "TRAIN.CHECKPOINT_FILE_PATH", "", "TRAIN.BATCH_SIZE", "8"]


def dead_pid() -> int:
    finished = subprocess.Popen(["true"])
    finished.wait()
    return finished.pid


def write_lock(folder, pid, host):
    (folder / LOCK_FILE).write_text(json.dumps({"pid": pid, "host": host, "started": 1.7e9}) + "\n")


def test_a_second_run_fails_at_once_naming_the_holder_and_the_first_keeps_the_lock(demo_data_dir, tmp_path, capsys):
    out = tmp_path / "out"
    first = RunLock(str(out))  # the first run's lock; flock excludes a second open even in this process
    first.acquire()
    try:
        status = run_net.main(["--cfg", PT_CFG, "DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(out), *QUICK])
        err = capsys.readouterr().err
        assert status == 6  # output
        assert f"OutputDirInUse: {out} is in use by another run (pid {os.getpid()} on host {socket.gethostname()}" in err
        assert "wait for it to end, or give this run another OUTPUT_DIR" in err
        assert sorted(os.listdir(out)) == [LOCK_FILE]  # not even a line of its log in the first run's files
        assert json.loads((out / LOCK_FILE).read_text())["pid"] == os.getpid()
    finally:
        first.release()
    assert not (out / LOCK_FILE).exists()


def test_a_second_lock_in_the_same_process_is_refused_and_release_removes_the_file(tmp_path):
    with hold_output_dir(str(tmp_path)):
        with pytest.raises(OutputDirInUse, match=rf"pid {os.getpid()} on host "):
            RunLock(str(tmp_path)).acquire()
    assert os.listdir(tmp_path) == []
    with hold_output_dir(str(tmp_path)):  # free again
        assert os.listdir(tmp_path) == [LOCK_FILE]


def test_the_lock_of_a_dead_process_on_this_host_is_taken_over_with_a_warning(tmp_path, caplog):
    pid = dead_pid()
    write_lock(tmp_path, pid, socket.gethostname())
    lock = RunLock(str(tmp_path))
    with caplog.at_level("WARNING"):
        lock.acquire()
    assert f"took over {tmp_path / LOCK_FILE} from pid {pid} on host {socket.gethostname()}, started " in caplog.text
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    lock.release()
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_lock_written_on_another_host_is_never_taken_over(tmp_path):
    write_lock(tmp_path, dead_pid(), "node-17")
    with pytest.raises(OutputDirInUse, match="names pid .* on host node-17, .*cannot tell whether that run is still "
                                             "going: if it is not, delete the lock file"):
        RunLock(str(tmp_path)).acquire()
    assert json.loads((tmp_path / LOCK_FILE).read_text())["host"] == "node-17"


def test_resuming_with_another_learning_rate_stops_naming_the_keys(demo_data_dir, tmp_path, capsys):
    args = ["--cfg", PT_CFG, "DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(tmp_path), *QUICK]
    assert run_net.main(args) == 0
    assert run_net.main([*args, "SOLVER.MAX_EPOCH", "2", "SOLVER.BASE_LR", "0.1"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"ResumeConflict: OUTPUT_DIR {tmp_path} holds the checkpoint "
                           f"{tmp_path / 'checkpoints' / 'checkpoint_epoch_00001.pyth'} of a run with another recipe "
                           "(SOLVER.BASE_LR 0.002 -> 0.1): resuming it would mix two runs")
    assert "TRAIN.AUTO_RESUME_ALLOW_CHANGES True" in line
    assert not (tmp_path / "checkpoints" / "checkpoint_epoch_00002.pyth").exists()


@pytest.mark.parametrize("overrides, stops", [
    (["SOLVER.MAX_EPOCH", "40", "DATA_LOADER.NUM_WORKERS", "0", "MODEL.COMPILE", "True"], False),  # how, not what
    (["MVIT.DEPTH", "6"], True),
    (["TRAIN.BATCH_SIZE", "16"], True),
    (["AUG.MASK_RATIO", "0.6"], True),
    (["SOLVER.LR_POLICY", "constant"], True),
    (["SOLVER.BASE_LR", "0.1", "TRAIN.AUTO_RESUME_ALLOW_CHANGES", "True"], False),
])
def test_recipe_changes_stop_a_resume_and_other_changes_are_logged(overrides, stops, tmp_path, caplog):
    stored = load_config(PT_CFG).dump()
    cfg = load_config(PT_CFG, overrides)
    with caplog.at_level("INFO"):
        if stops:
            with pytest.raises(ResumeConflict, match=rf"another recipe \({overrides[0]} "):
                check_resumed_config(cfg, "c.pyth", stored)
        else:
            check_resumed_config(cfg, "c.pyth", stored)
    assert re.search(rf"keys changed since it was written: .*{overrides[0]} ", caplog.text)


def test_a_config_without_changes_or_keys_the_checkpoint_lacks_pass_quietly(caplog):
    cfg = load_config(PT_CFG)
    with caplog.at_level("INFO"):
        check_resumed_config(cfg, "c.pyth", cfg.dump())
        check_resumed_config(cfg, "c.pyth", "SOLVER:\n  BASE_LR: 0.002\n")  # an older config, fewer keys
    assert caplog.text == ""
    for text in ("", "not: [yaml", "- a list"):
        caplog.clear()
        with caplog.at_level("WARNING"):
            check_resumed_config(cfg, "c.pyth", text)
        assert "c.pyth holds no config: the current one cannot be compared" in caplog.text
