"""Sharded checkpoint folders in one process (no process group): written atomically,
read whole as a .pyth's dict, consolidated into a .pyth, found, set aside and pruned like
files, their temporaries removed after a killed run."""

import errno
import os

import pytest
import torch
from torch import nn
from tool_scripts import load_tool

from slowmask import checkpoint
from slowmask.checkpoint import sharded
from slowmask.utils import output_files
from slowmask.utils.output_files import DiskFullError, remove_stale_temporaries


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(nn.Linear(4, 4) for _ in range(2))
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        for block in self.blocks:
            x = block(x).relu()
        return self.head(x)


def trained(seed: int = 0):
    """A Tiny model and its AdamW after one step (so the optimizer has a state)."""
    torch.manual_seed(seed)
    model = Tiny()
    optimizer = torch.optim.AdamW([{"params": model.blocks.parameters()}, {"params": model.head.parameters(),
                                                                             "weight_decay": 0.0}], lr=0.1)
    model(torch.randn(3, 4)).square().sum().backward()
    optimizer.step()
    return model, optimizer


def write(path, model, optimizer, **extra):
    sharded.save_sharded_checkpoint(str(path), model, optimizer, 4, "cfg: yaml", iteration=2, items=16,
                                    hooks_state={"Hook": {"count": 3}}, **extra)


def test_a_folder_holds_the_shards_and_reads_back_as_the_file_of_the_same_run(tmp_path):
    model, optimizer = trained()
    folder = tmp_path / "checkpoint_epoch_00005.iter_000002"
    write(folder, model, optimizer)
    assert sorted(os.listdir(tmp_path)) == [folder.name]  # renamed into place, no temporary left
    assert sorted(os.listdir(folder)) == [".metadata", "__0_0.distcp", "run_state.pyth"]
    assert checkpoint.is_sharded_checkpoint(str(folder))
    state = checkpoint.read_sharded_checkpoint(str(folder))
    assert (state["epoch"], state["iteration"], state["items"], state["cfg"]) == (4, 2, 16, "cfg: yaml")
    assert state["hooks_state"] == {"Hook": {"count": 3}}
    for name, value in model.state_dict().items():
        assert torch.equal(state["model_state"][name], value), name
    # numbered as torch numbers a whole model's optimizer: it loads into a fresh one and equals the original
    fresh_model, fresh_optimizer = trained(seed=1)
    fresh_optimizer.load_state_dict(state["optimizer_state"])
    expected, loaded = optimizer.state_dict(), fresh_optimizer.state_dict()
    assert loaded["param_groups"] == expected["param_groups"]
    for index, moments in expected["state"].items():
        for key, value in moments.items():
            assert torch.equal(loaded["state"][index][key], value), (index, key)


def test_a_folder_loads_into_a_fresh_model_and_optimizer_as_it_was(tmp_path):
    model, optimizer = trained()
    write(tmp_path / "folder", model, optimizer)
    fresh_model, fresh_optimizer = trained(seed=1)
    sharded.load_sharded_checkpoint(str(tmp_path / "folder"), fresh_model, fresh_optimizer)
    for name, value in model.state_dict().items():
        assert torch.equal(fresh_model.state_dict()[name], value), name
    assert fresh_optimizer.state_dict()["param_groups"] == optimizer.state_dict()["param_groups"]
    for index, moments in optimizer.state_dict()["state"].items():
        for key, value in moments.items():
            assert torch.equal(fresh_optimizer.state_dict()["state"][index][key], value), (index, key)


def test_consolidated_file_is_the_checkpoint_and_tools_read_the_folder_alike(tmp_path):
    model, optimizer = trained()
    write(tmp_path / "folder", model, optimizer)
    out = tmp_path / "out" / "whole.pyth"
    checkpoint.consolidate_checkpoint(str(tmp_path / "folder"), str(out))
    assert sorted(os.listdir(out.parent)) == ["whole.pyth"]
    whole = checkpoint.read_checkpoint(str(out))
    assert whole.keys() == checkpoint.read_sharded_checkpoint(str(tmp_path / "folder")).keys()
    for source in (out, tmp_path / "folder"):  # a tool's load_weights takes either
        target = Tiny()
        checkpoint.load_weights(str(source), target)
        for name, value in model.state_dict().items():
            assert torch.equal(target.state_dict()[name], value), (source, name)


def test_consolidating_what_is_not_a_sharded_folder_names_it(tmp_path):
    with pytest.raises(checkpoint.CheckpointError, match=f"{tmp_path} is not a sharded checkpoint folder"):
        checkpoint.consolidate_checkpoint(str(tmp_path), str(tmp_path / "x.pyth"))
    assert os.listdir(tmp_path) == []


def test_a_disk_that_fills_during_the_write_leaves_neither_the_folder_nor_its_temporary(tmp_path, monkeypatch):
    model, optimizer = trained()

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sharded, "_write_run_state", full_disk)
    folder = tmp_path / "checkpoint_epoch_00001"
    with pytest.raises(DiskFullError, match=f"no space left to write {folder}: it needs about "):
        write(folder, model, optimizer)
    assert os.listdir(tmp_path) == []


def test_a_disk_without_room_for_the_shards_fails_before_writing(tmp_path, monkeypatch):
    model, optimizer = trained()
    monkeypatch.setattr(output_files, "free_bytes", lambda folder: 100)
    with pytest.raises(DiskFullError, match="bytes and 100 are free in"):
        write(tmp_path / "checkpoint_epoch_00001", model, optimizer)
    assert os.listdir(tmp_path) == []


def test_folders_and_files_are_found_newest_first_pruned_and_set_aside_alike(tmp_path):
    model, optimizer = trained()
    output = str(tmp_path)
    checkpoint.save_checkpoint(checkpoint.checkpoint_path(output, 1), model, optimizer, 0, "cfg: yaml")
    for epoch in (2, 3):
        write(checkpoint.checkpoint_path(output, epoch, sharded=True), model, optimizer)
    names = [os.path.basename(path) for path in checkpoint.epoch_checkpoints(output)]
    assert names == ["checkpoint_epoch_00001.pyth", "checkpoint_epoch_00002", "checkpoint_epoch_00003"]
    os.remove(os.path.join(checkpoint.checkpoint_path(output, 3, sharded=True), ".metadata"))
    assert checkpoint.unreadable_reason(checkpoint.checkpoint_path(output, 3, sharded=True)) == \
        "a sharded checkpoint folder without its index .metadata"
    deleted = checkpoint.prune_checkpoints(output, keep_last=1)
    assert deleted == [checkpoint.checkpoint_path(output, 1)]
    assert sorted(os.listdir(checkpoint.checkpoint_dir(output))) == ["checkpoint_epoch_00002",
                                                                     "checkpoint_epoch_00003.unreadable"]
    path, state = checkpoint.read_newest(output)
    assert path == checkpoint.checkpoint_path(output, 2, sharded=True) and state["model_state"] == {}


def test_the_temporary_folder_of_a_killed_run_is_removed(tmp_path):
    dead = tmp_path / "checkpoint_epoch_00001.tmp-999999999"  # no such process
    dead.mkdir()
    (dead / "__0_0.distcp").write_bytes(b"partial")
    assert remove_stale_temporaries([str(tmp_path)]) == [str(dead)]
    assert os.listdir(tmp_path) == []


def test_the_convert_tool_consolidates_a_folder_and_refuses_a_config_for_it(tmp_path, capsys):
    convert = load_tool("convert")
    model, optimizer = trained()
    write(tmp_path / "folder", model, optimizer)
    out = tmp_path / "whole.pyth"
    assert convert.main([str(tmp_path / "folder"), "--output", str(out)]) == 0
    whole = checkpoint.read_checkpoint(str(out))
    assert (whole["epoch"], whole["cfg"]) == (4, "cfg: yaml")
    for name, value in model.state_dict().items():
        assert torch.equal(whole["model_state"][name], value), name
    refused = tmp_path / "refused.pyth"
    assert convert.main([str(tmp_path / "folder"), "--output", str(refused), "--cfg-out", str(tmp_path / "c.yaml")]) == 2
    assert capsys.readouterr().err.splitlines()[-1].startswith(f"UsageError: --cfg-out: {tmp_path / 'folder'} is a sharded")
    assert not refused.exists() and not (tmp_path / "c.yaml").exists()
