"""tools/probe.py reads a checkpoint's encoder through either config: a pretraining
checkpoint through a classifier config and the reverse, by name as fine-tuning loads it;
its own checkpoint strictly; the log says "loaded weights", never "resumed"."""

import json
import logging
import os

import pytest
import torch
from tool_scripts import REPO, demo_overrides, load_tool

from slowmask.config import load_config
from slowmask.checkpoint import read_checkpoint, save_checkpoint
from slowmask.methods import build_model

probe = load_tool("probe")

PT_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_MaskFeat_PT.yaml")
FT_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_FT.yaml")
# The same encoder at toy size in both configs.
SMALL = ["DATA.TRAIN_CROP_SIZE", "32", "DATA.TEST_CROP_SIZE", "32"]
ENCODER = "blocks.1.attn.qkv.weight"


def model_of(cfg_file: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(load_config(cfg_file, SMALL))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """{"pretraining": path, "classifier": path}: each model's weights at seed 1."""
    folder = tmp_path_factory.mktemp("probe_weights")
    paths = {}
    for name, cfg_file in (("pretraining", PT_CFG), ("classifier", FT_CFG)):
        paths[name] = str(folder / f"{name}.pyth")
        save_checkpoint(paths[name], model_of(cfg_file, seed=1), None, 2, "")
    return paths


@pytest.mark.parametrize("written_by, probed_through", [("pretraining", FT_CFG), ("classifier", PT_CFG)])
def test_the_encoder_of_the_other_model_is_loaded_by_name(checkpoints, written_by, probed_through, caplog):
    model = model_of(probed_through)
    with caplog.at_level(logging.INFO):
        probe.load_encoder_weights(checkpoints[written_by], model)
    saved = read_checkpoint(checkpoints[written_by])["model_state"]
    for name in (ENCODER, "patch_embed.proj.weight", "cls_token"):
        assert torch.equal(model.state_dict()[name], saved[name]), name
    assert "loading the encoder weights of" in caplog.text and "initialized from" in caplog.text
    assert "WARNING" not in [record.levelname for record in caplog.records]
    assert "resumed from" not in caplog.text


def test_a_classifier_of_other_classes_gives_its_encoder(tmp_path, caplog):
    other = str(tmp_path / "seven_classes.pyth")
    torch.manual_seed(1)
    save_checkpoint(other, build_model(load_config(FT_CFG, [*SMALL, "MODEL.NUM_CLASSES", "7"])), None, 0, "")
    model = model_of(FT_CFG)
    with caplog.at_level(logging.INFO):
        probe.load_encoder_weights(other, model)
    assert torch.equal(model.state_dict()[ENCODER], read_checkpoint(other)["model_state"][ENCODER])
    assert "WARNING" not in [record.levelname for record in caplog.records]


def test_its_own_checkpoint_loads_strictly_as_loaded_weights(checkpoints, caplog):
    model = model_of(PT_CFG)
    with caplog.at_level(logging.INFO):
        probe.load_encoder_weights(checkpoints["pretraining"], model)
    assert f"loaded weights from {checkpoints['pretraining']} (epoch 3)" in caplog.text
    assert "by name" not in caplog.text and "resumed from" not in caplog.text
    saved = read_checkpoint(checkpoints["pretraining"])["model_state"]
    assert torch.equal(model.state_dict()["mask_token"], saved["mask_token"])


def test_an_encoder_tensor_the_checkpoint_lacks_is_a_warning_naming_it(checkpoints, tmp_path, caplog):
    state = read_checkpoint(checkpoints["pretraining"])["model_state"]
    del state[ENCODER]
    partial = str(tmp_path / "partial.pyth")
    torch.save({"model_state": state, "epoch": 0}, partial)
    with caplog.at_level(logging.INFO):
        probe.load_encoder_weights(partial, model_of(FT_CFG))
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert any(f"1 encoder tensor(s) are not in {partial} and keep their random initialization, which the probes "
               f"read: {ENCODER};" in message for message in warnings), warnings


def test_a_pretraining_checkpoint_probes_through_the_classifier_config(checkpoints, demo_data_dir, tmp_path, caplog):
    out = tmp_path / "scores.json"
    argv = ["--cfg", FT_CFG, "--checkpoint", checkpoints["pretraining"], "--eval-split", "val", "--probes", "knn",
            "--json", str(out), *demo_overrides(demo_data_dir, str(tmp_path)), *SMALL, "PROBE.KNN_K", "4"]
    with caplog.at_level(logging.INFO):
        assert probe.main(argv) == 0
    assert set(json.loads(out.read_text())) == {"chance", "majority_baseline", "knn", "pooling", "views"}
    assert "does not fit" not in caplog.text and "resumed from" not in caplog.text


@pytest.mark.parametrize("flag, make, message", [
    ("--json", lambda tmp: str(tmp), "is a folder: name the file to write in it"),
    ("--out", lambda tmp: str(tmp / "file"), "is a file, not a folder"),
])
def test_an_output_of_the_wrong_kind_is_one_line_before_any_work(flag, make, message, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert probe.main(["--cfg", FT_CFG, flag, make(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"UsageError: {flag} " in err and message in err


def test_a_folder_as_checkpoint_is_one_line_with_status_4(tmp_path, demo_data_dir, capsys):
    argv = ["--cfg", FT_CFG, "--checkpoint", str(tmp_path), *demo_overrides(demo_data_dir, str(tmp_path)), *SMALL]
    assert probe.main(argv) == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"CheckpointError: {tmp_path} is a folder, not a checkpoint" in err
