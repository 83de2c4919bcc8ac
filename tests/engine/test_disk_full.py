"""A full disk: a write that fails part-way (ENOSPC, simulated) leaves no temporary file
and the previous checkpoint intact, free space is checked before writing, temporary
files of dead processes go at start, and the log says "disk full" once."""

import collections
import errno
import logging
import os
import subprocess

import pytest
import torch
from torch import nn

from slowmask import checkpoint
from slowmask.engine import resume
from slowmask.engine.train import owning_output_dir
from slowmask.utils import logging as run_logging
from slowmask.utils import output_files
from slowmask.utils.output_files import DiskFullError, remove_stale_temporaries
from tool_scripts import load_tool

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
run_net = load_tool("run_net")

PT_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_MaskFeat_PT.yaml")
QUICK = ["DATA_LOADER.NUM_WORKERS", "0", "SOLVER.WARMUP_EPOCHS", "0.0", "LOG_PERIOD", "1", "DATA.TRAIN_CROP_SIZE", "32",
         "DATA.TEST_CROP_SIZE", "32", "DATA.DECODING_SHORT_SIZE", "40", "TRAIN.CHECKPOINT_FILE_PATH", "",
         "TRAIN.BATCH_SIZE", "8"]
Usage = collections.namedtuple("Usage", "total used free")


class FillingFile:
    """A file whose writes fail with ENOSPC once `room` bytes are written, as on a full disk."""

    def __init__(self, f, room):
        self.f, self.room = f, room

    def write(self, data):
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def fill_disk_on(monkeypatch, name_part, room=1000):
    """Writes to temporary files whose path contains `name_part` hit a full disk."""
    real_open = checkpoint.files.g_pathmgr.open

    def opened(path, mode="r", **kwargs):
        f = real_open(path, mode, **kwargs)
        return FillingFile(f, room) if ".tmp-" in path and name_part in path else f

    monkeypatch.setattr(checkpoint.files.g_pathmgr, "open", opened)


def free_space(monkeypatch, free):
    monkeypatch.setattr(output_files.shutil, "disk_usage", lambda folder: Usage(10 * free, 9 * free, free))


def tiny():
    torch.manual_seed(0)
    model = nn.Linear(64, 64)
    return model, torch.optim.AdamW(model.parameters())


def dead_pid():
    finished = subprocess.Popen(["true"])
    finished.wait()
    return finished.pid


def test_a_write_that_fills_the_disk_leaves_no_temporary_and_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    out = str(tmp_path)
    model, optimizer = tiny()
    first = checkpoint.checkpoint_path(out, 1)
    checkpoint.save_checkpoint(first, model, optimizer, 0, "")
    fill_disk_on(monkeypatch, "checkpoint_epoch_00002")
    free_space(monkeypatch, 10**9)
    second = checkpoint.checkpoint_path(out, 2)
    with pytest.raises(DiskFullError) as caught:
        checkpoint.save_checkpoint(second, model, optimizer, 1, "")
    needed = os.path.getsize(first)  # the previous checkpoint's size: more than its tensors' bytes
    assert str(caught.value) == (
        f"no space left to write {second}: it needs about {needed:,} bytes and 1,000,000,000 are free in "
        f"{os.path.dirname(second)}; free space there (delete old checkpoints, or keep fewer with "
        "TRAIN.CHECKPOINT_KEEP_LAST) or move OUTPUT_DIR to a larger disk, then rerun: the run resumes from its last "
        "complete checkpoint"
    )
    assert caught.value.exit_status == 6
    assert os.listdir(os.path.dirname(first)) == ["checkpoint_epoch_00001.pyth"]
    fresh, _ = tiny()
    nn.init.zeros_(fresh.weight)
    resume.resume(first, fresh)
    assert torch.equal(fresh.weight, model.weight)


def test_free_space_is_checked_before_writing_and_little_of_it_warns(tmp_path, monkeypatch, caplog):
    model, optimizer = tiny()
    first = checkpoint.checkpoint_path(str(tmp_path), 1)
    checkpoint.save_checkpoint(first, model, optimizer, 0, "")
    needed = os.path.getsize(first)
    free_space(monkeypatch, needed - 1)
    second = checkpoint.checkpoint_path(str(tmp_path), 2)
    with pytest.raises(DiskFullError, match=rf"needs about {needed:,} bytes and {needed - 1:,} are free"):
        checkpoint.save_checkpoint(second, model, optimizer, 1, "")
    assert os.listdir(os.path.dirname(first)) == ["checkpoint_epoch_00001.pyth"]  # nothing was begun
    free_space(monkeypatch, 2 * needed)
    with caplog.at_level("WARNING"):
        checkpoint.save_checkpoint(second, model, optimizer, 1, "")
    assert (f"the disk of {tmp_path / 'checkpoints'} is nearly full: {2 * needed:,} bytes free, room for 1 more file(s) of "
            f"{needed:,} bytes after this one") in caplog.text


def test_a_run_whose_checkpoint_fills_the_disk_ends_with_one_line_and_exit_6(demo_data_dir, tmp_path, monkeypatch, capsys):
    fill_disk_on(monkeypatch, "checkpoint_epoch_00002")
    status = run_net.main(["--cfg", PT_CFG, "DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(tmp_path), *QUICK,
                           "SOLVER.MAX_EPOCH", "2", "TRAIN.CHECKPOINT_PERIOD", "1"])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert status == 6
    assert line.startswith(f"DiskFullError: no space left to write {tmp_path / 'checkpoints' / 'checkpoint_epoch_00002.pyth'}")
    assert line.endswith(f"(traceback in {tmp_path / 'stdout.log'})")
    assert os.listdir(tmp_path / "checkpoints") == ["checkpoint_epoch_00001.pyth"]
    assert checkpoint.read_checkpoint(str(tmp_path / "checkpoints" / "checkpoint_epoch_00001.pyth"))["epoch"] == 0
    assert not (tmp_path / "run.lock").exists()


def test_temporaries_of_dead_processes_are_removed_when_a_run_starts(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    dead, alive = dead_pid(), os.getppid()
    (folder / f"checkpoint_epoch_00002.pyth.tmp-{dead}").write_bytes(b"x" * 10)
    (tmp_path / f"config.yaml.tmp-{dead}").write_text("A: 1\n")
    (folder / f"checkpoint_epoch_00003.pyth.tmp-{alive}").write_bytes(b"being written")
    (folder / f"checkpoint_epoch_00004.pyth.tmp-{os.getpid()}").write_bytes(b"ours")
    (folder / "notes.tmp-x").write_text("not ours")
    with owning_output_dir(str(tmp_path)):
        assert sorted(os.listdir(folder)) == sorted([f"checkpoint_epoch_00003.pyth.tmp-{alive}",
                                                     f"checkpoint_epoch_00004.pyth.tmp-{os.getpid()}", "notes.tmp-x"])
        assert sorted(os.listdir(tmp_path)) == ["checkpoints", "run.lock"]
    assert remove_stale_temporaries([str(tmp_path), str(folder)]) == []


def test_logging_to_a_full_disk_says_so_once_and_goes_on_on_the_console(tmp_path, capsys):
    run_logging.setup_logging(str(tmp_path))
    try:
        (to_file,) = [h for h in logging.getLogger("slowmask").handlers if isinstance(h, run_logging._LogFileHandler)]
        to_file.setStream(FillingFile(to_file.stream, room=0))
        log = logging.getLogger("slowmask.test")
        for i in range(10):
            log.warning("record %d", i)
        captured = capsys.readouterr()
    finally:
        run_logging.setup_logging(None)
    assert "--- Logging error ---" not in captured.err
    assert captured.err == (f"cannot write the log file {tmp_path / 'stdout.log'}: No space left on device; the log goes "
                            "on on the console only until it can be written again\n")
    assert [line.rsplit(": ", 1)[1] for line in captured.out.splitlines()] == [f"record {i}" for i in range(10)]


def test_json_stats_on_a_full_disk_end_with_disk_full(tmp_path, monkeypatch):
    real_open = run_logging.g_pathmgr.open
    monkeypatch.setattr(run_logging.g_pathmgr, "open", lambda path, mode="r", **kw: FillingFile(real_open(path, mode), 0))
    with pytest.raises(DiskFullError, match=rf"no space left to write {tmp_path / 'json_stats.log'}: it needs about 14 bytes"):
        run_logging.write_json_stats(str(tmp_path), {"loss": 1.5})
