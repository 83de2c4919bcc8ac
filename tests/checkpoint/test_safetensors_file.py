"""Checkpoints as safetensors (no pickle): written with epoch, cfg and a CRC-32 per tensor,
read wherever a checkpoint is read (tools, fine-tuning, testing, resuming), refused naming
the tensor when a byte changed, the header checked for a truncated file."""

import json
import logging
import os

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from slowmask.checkpoint import (
    CheckpointError,
    is_safetensors,
    load_pretrained,
    load_weights,
    read_checkpoint,
    save_checkpoint,
    write_safetensors_checkpoint,
)
from slowmask.config import load_config
from slowmask.engine import resume
from slowmask.engine.evaluate import load_classifier
from slowmask.methods import build_model
from tool_scripts import REPO, load_tool

export = load_tool("export")


def warnings(caplog) -> list:
    """The WARNING lines logged (an earlier test may have left the root logger at INFO)."""
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]


def demo(name: str) -> str:
    return os.path.join(REPO, "configs", "demo", name)


def linear_state():
    torch.manual_seed(0)
    layer = nn.Linear(3, 2)
    state = layer.state_dict()
    state["steps"] = torch.tensor(7)  # an integer buffer, kept with its dtype
    state["half"] = torch.randn(4, dtype=torch.bfloat16)
    return state


def test_the_file_holds_tensors_and_string_metadata_and_reads_back_whole(tmp_path):
    path = str(tmp_path / "w.safetensors")
    state = linear_state()
    write_safetensors_checkpoint(path, state, 4, "MODEL:\n  NUM_CLASSES: 2\n")
    assert os.listdir(tmp_path) == ["w.safetensors"]
    with safe_open(path, "pt") as f:
        metadata = f.metadata()
        assert sorted(f.keys()) == sorted(state)
    assert sorted(metadata) == ["cfg", "crc32", "epoch", "format"]
    assert (metadata["format"], metadata["epoch"]) == ("slowmask-checkpoint", "4")
    assert sorted(json.loads(metadata["crc32"])) == sorted(state)
    read = read_checkpoint(path)
    assert sorted(read) == ["cfg", "epoch", "model_state"]
    assert (read["epoch"], read["cfg"]) == (4, "MODEL:\n  NUM_CLASSES: 2\n")
    for name, value in state.items():
        assert read["model_state"][name].dtype == value.dtype and torch.equal(read["model_state"][name], value)


def test_a_changed_byte_is_refused_naming_its_tensor(tmp_path):
    path = tmp_path / "w.safetensors"
    write_safetensors_checkpoint(str(path), {"a": torch.zeros(8), "b": torch.ones(8)}, 0, "")
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # the last byte of the data section: b's (same dtypes are laid out by name)
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError) as error:
        read_checkpoint(str(path))
    assert str(error.value) == (
        f"{path} is damaged: its tensor b fails its CRC-32 check (its bytes changed after it was written: a "
        "disk, memory or copy error); copy it again from its source, or export it again"
    )


def test_a_truncated_file_fails_its_header_check(tmp_path):
    path = tmp_path / "w.safetensors"
    write_safetensors_checkpoint(str(path), linear_state(), 0, "")
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(CheckpointError, match=f"^{path} is not a readable safetensors checkpoint: .*"
                                              r"\(a truncated copy, or an edited header\); copy it again"):
        read_checkpoint(str(path))


def test_a_file_of_another_program_is_read_with_its_header_checked_and_a_warning(tmp_path, caplog):
    path = str(tmp_path / "model.safetensors")
    save_file({"weight": torch.ones(2, 3), "bias": torch.zeros(2)}, path)
    with caplog.at_level(logging.WARNING):
        read = read_checkpoint(path)
    assert sorted(read) == ["model_state"] and torch.equal(read["model_state"]["weight"], torch.ones(2, 3))
    assert warnings(caplog) == [f"{path} carries no CRC-32s of its tensors (not written by slowmask): only its header "
                               "was checked, a flipped bit in its values would go unnoticed"]


def test_the_sniffing_tells_safetensors_from_torch_files(tmp_path):
    pyth = tmp_path / "c.pyth"
    save_checkpoint(str(pyth), nn.Linear(3, 2), None, 0, "")
    legacy = tmp_path / "legacy.pyth"
    torch.save({"model_state": {}}, str(legacy), _use_new_zipfile_serialization=False)
    safe = tmp_path / "w.safetensors"
    write_safetensors_checkpoint(str(safe), linear_state(), None, "")
    assert [is_safetensors(p.read_bytes()) for p in (pyth, legacy, safe)] == [False, False, True]
    header_of_2, header_of_3 = (2).to_bytes(8, "little") + b"{}", (3).to_bytes(8, "little") + b"{}"
    assert is_safetensors(header_of_2) and not is_safetensors(header_of_3)  # a size past the file's end


SMALL = ["DATA.NUM_FRAMES", "4", "DATA.TRAIN_CROP_SIZE", "32", "DATA.TEST_CROP_SIZE", "32"]


def exported(tmp_path, config: str, overrides, epoch=None):
    """A .pyth of `config`'s model and its tools/export.py --format pyth-safe copy."""
    torch.manual_seed(1)
    model = build_model(load_config(demo(config), overrides))
    pyth = str(tmp_path / f"{config}.pyth")
    save_checkpoint(pyth, model, None, 2, "")
    safe = str(tmp_path / f"{config}.safetensors")
    weights = ["--weights", pyth] if epoch is None else []
    assert export.main(["--cfg", demo(config), *weights, "--format", "pyth-safe", "--output", safe, *overrides]) == 0
    return model, pyth, safe


def test_every_reader_takes_the_exported_weights_as_it_takes_the_pyth(tmp_path):
    classifier, pyth, safe = exported(tmp_path, "ViT_tiny_FT.yaml", SMALL)
    assert read_checkpoint(safe)["epoch"] == 2
    assert read_checkpoint(safe)["cfg"] == load_config(demo("ViT_tiny_FT.yaml"), SMALL).dump()
    metadata = json.loads(open(safe + ".json").read())
    assert (metadata["content"], metadata["format"], metadata["epoch"], metadata["tensors"]) == (
        "weights", "pyth-safe", 3, len(classifier.state_dict()))
    for load in (load_weights, load_classifier, resume.load):  # the tools; TEST.; TRAIN.CHECKPOINT_FILE_PATH
        model = build_model(load_config(demo("ViT_tiny_FT.yaml"), SMALL))
        load(safe, model)
        for name, value in classifier.state_dict().items():
            assert torch.equal(model.state_dict()[name], value), (load.__name__, name)


def test_fine_tuning_from_exported_pretraining_weights_loads_what_the_pyth_loads(tmp_path):
    overrides = [*SMALL, "AUG.MASK_WINDOW_SIZE", "[2, 2, 2]"]
    _, pyth, safe = exported(tmp_path, "ViT_tiny_VideoMAE_PT.yaml", overrides)
    reports = []
    for path in (pyth, safe):
        torch.manual_seed(2)
        model = build_model(load_config(demo("ViT_tiny_VideoMAE_FT.yaml"), SMALL))
        reports.append((load_pretrained(path, model), model.state_dict()))
    (from_pyth, pyth_state), (from_safe, safe_state) = reports
    assert sorted(from_safe.loaded) == sorted(from_pyth.loaded)
    assert from_safe.new == ["head.projection.weight", "head.projection.bias"]
    assert all(torch.equal(safe_state[name], pyth_state[name]) for name in pyth_state)


def test_resuming_from_exported_weights_warns_that_the_optimizer_starts_fresh(tmp_path, caplog):
    _, _, safe = exported(tmp_path, "ViT_tiny_FT.yaml", SMALL)
    model = build_model(load_config(demo("ViT_tiny_FT.yaml"), SMALL))
    with caplog.at_level(logging.WARNING):
        assert resume.load(safe, model, torch.optim.SGD(model.parameters(), lr=0.1))["epoch"] == 2
    assert warnings(caplog) == [f"{safe} holds weights but no optimizer state: the run goes on from its epoch with a "
                               "fresh optimizer (moments and step counts from zero)"]


def test_weights_exported_without_a_run_cannot_be_resumed_from(tmp_path):
    _, _, safe = exported(tmp_path, "ViT_tiny_FT.yaml", SMALL, epoch="none")
    assert "epoch" not in read_checkpoint(safe)
    with pytest.raises(CheckpointError, match=f"^{safe} holds weights but no epoch: a run cannot resume from it; "
                                              "to initialize a model from it \\(fine-tuning\\), set "
                                              "TRAIN.CHECKPOINT_EPOCH_RESET True$"):
        resume.load(safe, build_model(load_config(demo("ViT_tiny_FT.yaml"), SMALL)))


def test_a_damaged_export_given_to_a_tool_exits_4_in_one_line(tmp_path, capsys):
    _, _, safe = exported(tmp_path, "ViT_tiny_FT.yaml", SMALL)
    data = bytearray(open(safe, "rb").read())
    data[-3] ^= 0x40
    open(safe, "wb").write(bytes(data))
    capsys.readouterr()
    output = str(tmp_path / "m.pt2")
    assert export.main(["--cfg", demo("ViT_tiny_FT.yaml"), "--weights", safe, "--output", output, *SMALL]) == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"CheckpointError: {safe} is damaged: its tensor " in err
    assert not os.path.exists(output) and not os.path.exists(output + ".json")
