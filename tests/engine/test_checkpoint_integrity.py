"""Damaged checkpoints: a bit flip is caught by the zip's CRCs, an unreadable file is set
aside (never resumed, never counted by pruning), pruning never loses a readable checkpoint
nor the one just written, and a run whose checkpoints are all unreadable stops."""

import io
import os
import shutil
import struct
import zipfile

import pytest
import torch
from torch import nn

from slowmask import checkpoint
from slowmask.checkpoint import CheckpointError, damaged_member, load_pretrained
from slowmask.config import load_config
from slowmask.engine import resume
from slowmask.engine.hooks import PeriodicCheckpoint
from slowmask.engine.train import train
from slowmask.utils.errors import EXIT_STATUS
from tool_scripts import load_tool

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_MaskFeat_PT.yaml")


def tiny_model():
    torch.manual_seed(0)
    model = nn.Linear(64, 32)
    return model, torch.optim.SGD(model.parameters(), lr=0.1)


def flip_bytes(path: str) -> str:
    """XOR 3 bytes inside the largest tensor's data of a torch zip checkpoint; returns
    that member's name."""
    with zipfile.ZipFile(path) as archive:
        largest = max((info for info in archive.infolist() if "/data/" in info.filename), key=lambda i: i.file_size)
    with open(path, "r+b") as f:
        f.seek(largest.header_offset + 26)
        name_length, extra_length = struct.unpack("<HH", f.read(4))
        start = largest.header_offset + 30 + name_length + extra_length
        for offset in (7, largest.file_size // 2, largest.file_size - 5):
            f.seek(start + offset)
            byte = f.read(1)[0]
            f.seek(start + offset)
            f.write(bytes([byte ^ 0x5A]))
    return largest.filename


def truncate(path: str, cut: int = 5) -> None:
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - cut)


def files(out_dir) -> list:
    return sorted(os.listdir(os.path.join(str(out_dir), "checkpoints")))


def demo_cfg(data_dir, out_dir, *opts):
    return load_config(DEMO_CFG, [
        "DATA.PATH_TO_DATA_DIR", data_dir, "OUTPUT_DIR", str(out_dir), "DATA_LOADER.NUM_WORKERS", "0",
        "TRAIN.BATCH_SIZE", "8", "SOLVER.WARMUP_EPOCHS", "0.5", "TRAIN.CHECKPOINT_PERIOD", "1", *opts,
    ])


@pytest.fixture(scope="module")
def run_of_two_epochs(demo_data_dir, tmp_path_factory) -> str:
    """OUTPUT_DIR of a demo run of 2 epochs, with checkpoint_epoch_00001/2.pyth."""
    out = tmp_path_factory.mktemp("two_epochs")
    train(demo_cfg(demo_data_dir, out, "SOLVER.MAX_EPOCH", "2"))
    return str(out)


def copy_checkpoints(run: str, out, names: dict) -> None:
    """Copy checkpoints of `run` into out/checkpoints: {name there: name here}."""
    os.makedirs(os.path.join(str(out), "checkpoints"), exist_ok=True)
    for theirs, ours in names.items():
        shutil.copy(os.path.join(run, "checkpoints", theirs), os.path.join(str(out), "checkpoints", ours))


# Item: a bit-flipped checkpoint.

def test_a_bit_flipped_checkpoint_is_refused_naming_its_damaged_member(tmp_path):
    path = str(tmp_path / "c.pyth")
    checkpoint.save_checkpoint(path, *tiny_model(), 0, "")
    member = flip_bytes(path)
    assert "model_state" in torch.load(path, weights_only=True)  # torch alone loads the flipped values silently
    for read in (checkpoint.read_checkpoint, lambda p: resume.load(p, tiny_model()[0]),
                 lambda p: load_pretrained(p, tiny_model()[0])):
        with pytest.raises(CheckpointError) as raised:
            read(path)
        assert str(raised.value) == (
            f"{path} is damaged: its member {member} fails its CRC-32 check (its bytes changed after it was written: "
            "a disk, memory or copy error); use an earlier checkpoint, or copy this one again from its source"
        )
        assert raised.value.exit_status == EXIT_STATUS["checkpoint"] == 4


def test_a_legacy_non_zip_checkpoint_is_read_without_the_check(tmp_path):
    model, _ = tiny_model()
    path = str(tmp_path / "legacy.pyth")
    torch.save({"epoch": 3, "model_state": model.state_dict()}, path, _use_new_zipfile_serialization=False)
    assert not zipfile.is_zipfile(path)
    assert damaged_member(open(path, "rb")) is None and checkpoint.unreadable_reason(path) is None
    state = checkpoint.read_checkpoint(path)
    assert state["epoch"] == 3 and torch.equal(state["model_state"]["weight"], model.weight)


def test_auto_resume_falls_back_from_a_bit_flipped_checkpoint(run_of_two_epochs, demo_data_dir, tmp_path):
    copy_checkpoints(run_of_two_epochs, tmp_path, {name: name for name in files(run_of_two_epochs)})
    damaged = checkpoint.checkpoint_path(str(tmp_path), 2)
    member = flip_bytes(damaged)
    train(demo_cfg(demo_data_dir, tmp_path, "SOLVER.MAX_EPOCH", "2"))
    log = (tmp_path / "stdout.log").read_text()
    assert f"skipping unreadable checkpoint, trying the previous one: {damaged} is damaged: its member {member} " \
           "fails its CRC-32 check" in log
    assert f"unreadable checkpoint {damaged} set aside as {damaged}.unreadable" in log
    assert "resumed from " + checkpoint.checkpoint_path(str(tmp_path), 1) in log
    assert files(tmp_path) == ["checkpoint_epoch_00001.pyth", "checkpoint_epoch_00002.pyth",
                               "checkpoint_epoch_00002.pyth.unreadable"]
    # Epoch 2 trained again from epoch 1's checkpoint gives the first run's weights, not the flipped ones.
    ours, theirs = (checkpoint.read_checkpoint(checkpoint.checkpoint_path(run, 2))["model_state"]
                    for run in (str(tmp_path), run_of_two_epochs))
    for name, value in theirs.items():
        torch.testing.assert_close(ours[name], value, rtol=1e-5, atol=1e-6 * float(value.abs().max()) + 1e-8)


def test_an_explicit_bit_flipped_checkpoint_stops_the_run(run_of_two_epochs, demo_data_dir, tmp_path):
    source = str(tmp_path / "source.pyth")
    shutil.copy(checkpoint.checkpoint_path(run_of_two_epochs, 1), source)
    member = flip_bytes(source)
    cfg = demo_cfg(demo_data_dir, tmp_path / "run", "SOLVER.MAX_EPOCH", "2", "TRAIN.CHECKPOINT_FILE_PATH", source)
    with pytest.raises(CheckpointError, match=f"{source} is damaged: its member {member} fails") as raised:
        train(cfg)
    assert raised.value.exit_status == 4
    assert not os.path.exists(tmp_path / "run" / "checkpoints")


# Item: pruning with an unreadable checkpoint.

def test_pruning_keeps_readable_checkpoints_and_sets_an_unreadable_newer_one_aside(tmp_path, caplog):
    out = str(tmp_path)
    model, optimizer = tiny_model()
    for epoch in (1, 5):
        checkpoint.save_checkpoint(checkpoint.checkpoint_path(out, epoch), model, optimizer, epoch - 1, "")
    truncate(checkpoint.checkpoint_path(out, 5))
    hook = PeriodicCheckpoint(out, 1, model, optimizer, "", keep_last=2)
    with caplog.at_level("WARNING"):
        written = hook.save(1)  # checkpoint_epoch_00002.pyth, older by name than the damaged epoch 5
    assert written == checkpoint.checkpoint_path(out, 2)
    assert files(tmp_path) == ["checkpoint_epoch_00001.pyth", "checkpoint_epoch_00002.pyth",
                               "checkpoint_epoch_00005.pyth.unreadable"]
    assert "checkpoint_epoch_00005.pyth set aside as" in caplog.text and "an incomplete zip archive" in caplog.text
    hook.keep_last = 1
    hook.save(2)
    assert files(tmp_path) == ["checkpoint_epoch_00003.pyth", "checkpoint_epoch_00005.pyth.unreadable"]


def test_the_checkpoint_just_written_is_never_pruned(tmp_path):
    """A run that does not resume (TRAIN.AUTO_RESUME False) writes epoch 1 beside an older
    run's epoch 7: the newest by name, but not the one to keep."""
    out = str(tmp_path)
    model, optimizer = tiny_model()
    checkpoint.save_checkpoint(checkpoint.checkpoint_path(out, 7), model, optimizer, 6, "")
    PeriodicCheckpoint(out, 1, model, optimizer, "", keep_last=1).save(0, 3)
    assert files(tmp_path) == ["checkpoint_epoch_00001.iter_000003.pyth"]


def test_issue_scenario_a_truncated_newest_checkpoint_loses_no_readable_one(run_of_two_epochs, demo_data_dir, tmp_path):
    """Epoch 1's checkpoint and a copy truncated by 5 bytes named as epoch 3's; a run of
    2 epochs keeping the last 1: it resumes from epoch 1, and keeps the epoch 2 it writes."""
    copy_checkpoints(run_of_two_epochs, tmp_path, {"checkpoint_epoch_00001.pyth": "checkpoint_epoch_00001.pyth",
                                                   "checkpoint_epoch_00002.pyth": "checkpoint_epoch_00003.pyth"})
    truncate(checkpoint.checkpoint_path(str(tmp_path), 3))
    train(demo_cfg(demo_data_dir, tmp_path, "SOLVER.MAX_EPOCH", "2", "TRAIN.CHECKPOINT_KEEP_LAST", "1"))
    log = (tmp_path / "stdout.log").read_text()
    assert "checkpoint_epoch_00003.pyth set aside as" in log and "resumed from " + checkpoint.checkpoint_path(
        str(tmp_path), 1) in log
    assert files(tmp_path) == ["checkpoint_epoch_00002.pyth", "checkpoint_epoch_00003.pyth.unreadable"]
    assert checkpoint.read_checkpoint(checkpoint.checkpoint_path(str(tmp_path), 2))["epoch"] == 1


def test_a_run_whose_every_checkpoint_is_unreadable_stops_unless_told_to_start_over(
    run_of_two_epochs, demo_data_dir, tmp_path, capsys
):
    copy_checkpoints(run_of_two_epochs, tmp_path, {"checkpoint_epoch_00002.pyth": "checkpoint_epoch_00003.pyth",
                                                   "checkpoint_epoch_00001.pyth": "checkpoint_epoch_00001.pyth"})
    damaged = [checkpoint.checkpoint_path(str(tmp_path), epoch) for epoch in (1, 3)]
    truncate(damaged[1])
    flip_bytes(damaged[0])
    sizes = [os.path.getsize(path) for path in damaged]
    cfg = demo_cfg(demo_data_dir, tmp_path, "SOLVER.MAX_EPOCH", "1", "TRAIN.CHECKPOINT_KEEP_LAST", "1")
    with pytest.raises(CheckpointError) as raised:
        train(cfg)
    assert str(raised.value) == (
        f"every checkpoint in {tmp_path}/checkpoints is unreadable (2): checkpoint_epoch_00003.pyth, "
        "checkpoint_epoch_00001.pyth; their reasons are in the log. Put an intact checkpoint of this run there, or "
        "set TRAIN.AUTO_RESUME_START_OVER True to set them aside and train from the start"
    )
    assert raised.value.exit_status == 4
    assert [os.path.getsize(path) for path in damaged] == sizes  # left as they were
    args = ["--cfg", DEMO_CFG, "DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(tmp_path),
            "DATA_LOADER.NUM_WORKERS", "0", "TRAIN.BATCH_SIZE", "8", "SOLVER.MAX_EPOCH", "1",
            "SOLVER.WARMUP_EPOCHS", "0.5"]
    assert load_tool("run_net").main(args) == 4
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"CheckpointError: every checkpoint in {tmp_path}/checkpoints is unreadable (2): ")
    assert [os.path.getsize(path) for path in damaged] == sizes
    train(demo_cfg(demo_data_dir, tmp_path, "SOLVER.MAX_EPOCH", "1", "TRAIN.CHECKPOINT_KEEP_LAST", "1",
                   "TRAIN.AUTO_RESUME_START_OVER", "True"))
    assert "training epochs 1..1" in (tmp_path / "stdout.log").read_text()
    assert files(tmp_path) == ["checkpoint_epoch_00001.pyth", "checkpoint_epoch_00001.pyth.unreadable",
                               "checkpoint_epoch_00003.pyth.unreadable"]
    assert os.path.getsize(damaged[1] + ".unreadable") == sizes[1]


def test_damaged_member_reads_a_file_object_of_an_intact_checkpoint(tmp_path):
    buffer = io.BytesIO()
    torch.save({"model_state": tiny_model()[0].state_dict()}, buffer)
    buffer.seek(0)
    assert damaged_member(buffer) is None


def test_set_aside_never_overwrites_and_says_when_it_cannot_rename(tmp_path, monkeypatch, caplog):
    first, second = tmp_path / "c.pyth", tmp_path / "c.pyth.unreadable"
    first.write_bytes(b"one")
    second.write_bytes(b"earlier")
    assert checkpoint.set_aside(str(first), "why") == f"{first}.unreadable-1"
    assert second.read_bytes() == b"earlier" and (tmp_path / "c.pyth.unreadable-1").read_bytes() == b"one"
    first.write_bytes(b"two")
    monkeypatch.setattr(checkpoint.files.g_pathmgr, "mv", lambda source, target: False)
    with caplog.at_level("WARNING"):
        assert checkpoint.set_aside(str(first), "why") is None
    assert first.read_bytes() == b"two"
    assert f"unreadable checkpoint {first} left where it is: it could not be renamed to {first}.unreadable-2: why" \
        in caplog.text
