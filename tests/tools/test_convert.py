"""tools/convert.py: a published checkpoint becomes a slowmask checkpoint and a config that
tools/run_net.py fine-tunes; TRAIN.CHECKPOINT_FILE_PATH takes the published file directly,
converted on the fly; refusals are one line with the checkpoint status."""

import logging
import os

import pytest
import torch
import yaml
from foreign_checkpoints import (
    CLASSES, HINTS, assert_close, nonzero_, slowmask_model, tiny_hf_config, videomae_forward, videomae_state,
)
from tool_scripts import REPO, load_tool
from transformers import VideoMAEForVideoClassification

from slowmask.checkpoint import load_pretrained, read_checkpoint, save_checkpoint
from slowmask.checkpoint.convert import convert_checkpoint
from slowmask.config import load_config
from slowmask.methods import build_model

convert = load_tool("convert")
run_net = load_tool("run_net")
DEMO_FT = os.path.join(REPO, "configs", "demo", "ViT_tiny_VideoMAE_FT.yaml")


@pytest.fixture
def videomae_file(tmp_path) -> str:
    path = tmp_path / "videomae_ft.pth"
    torch.save({"model": videomae_state()}, path)
    return str(path)


def test_a_converted_videomae_file_fine_tunes_with_the_written_config(videomae_file, demo_data_dir, tmp_path, caplog):
    out, cfg_out = tmp_path / "converted.pyth", tmp_path / "converted.yaml"
    with caplog.at_level(logging.INFO):
        assert convert.main([videomae_file, "--output", str(out), "--cfg-out", str(cfg_out), "--base", DEMO_FT,
                             "--frames", "8", "--crop", "64", "--num-heads", "2"]) == 0
    assert f"its classifier (head.projection.weight, head.projection.bias, {CLASSES} classes) is left out: the " \
           "model classifies 4" in caplog.text
    written = yaml.safe_load(cfg_out.read_text())
    assert written["_BASE_"] == DEMO_FT and written["MVIT"]["DEPTH"] == 2 and written["DATA"]["NUM_FRAMES"] == 8
    assert written["TRAIN"] == {"CHECKPOINT_FILE_PATH": str(out), "CHECKPOINT_EPOCH_RESET": True}
    assert not any(key.startswith("head.") for key in read_checkpoint(str(out))["model_state"])
    assert sorted(os.listdir(tmp_path)) == ["converted.pyth", "converted.yaml", "videomae_ft.pth"]
    run = tmp_path / "ft"
    assert run_net.main([
        "--cfg", str(cfg_out), "DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(run),
        "DATA_LOADER.NUM_WORKERS", "0", "SOLVER.MAX_EPOCH", "1", "SOLVER.WARMUP_EPOCHS", "0.5",
        "TRAIN.EVAL_PERIOD", "1", "TEST.NUM_ENSEMBLE_VIEWS", "1", "TEST.NUM_SPATIAL_CROPS", "1",
    ]) == 0
    log = (run / "stdout.log").read_text()
    assert "does not fit this model's stem" not in log
    assert "2 new (initialized): head.projection.weight, head.projection.bias" in log


def test_a_run_fine_tunes_a_hugging_face_folder_named_by_train_checkpoint_file_path(demo_data_dir, tmp_path):
    folder = tmp_path / "hf"
    hf = VideoMAEForVideoClassification(tiny_hf_config(num_hidden_layers=3, num_frames=8, image_size=64, intermediate_size=256))
    nonzero_(dict(hf.named_parameters()))
    hf.save_pretrained(folder)
    run = tmp_path / "ft"
    assert run_net.main([
        "--cfg", DEMO_FT, "TRAIN.CHECKPOINT_FILE_PATH", str(folder), "DATA.PATH_TO_DATA_DIR", demo_data_dir,
        "OUTPUT_DIR", str(run), "DATA_LOADER.NUM_WORKERS", "0", "SOLVER.MAX_EPOCH", "1", "SOLVER.WARMUP_EPOCHS", "0.5",
        "TRAIN.EVAL_PERIOD", "1", "TEST.NUM_ENSEMBLE_VIEWS", "1", "TEST.NUM_SPATIAL_CROPS", "1",
    ]) == 0
    log = (run / "stdout.log").read_text()
    assert f"converted {folder} (format hf_videomae): 51 of 51 source tensors used, 41 slowmask tensors filled" in log
    assert f"its classifier (head.projection.weight, head.projection.bias, {CLASSES} classes) is left out" in log
    assert "2 new (initialized): head.projection.weight, head.projection.bias" in log
    assert "does not fit this model's stem" not in log


def test_train_checkpoint_file_path_converts_a_published_file_on_the_fly(videomae_file, caplog):
    converted = convert_checkpoint(videomae_file, HINTS)
    model = slowmask_model(converted.config)
    with caplog.at_level(logging.INFO):
        report = load_pretrained(videomae_file, model)
    assert f"converted {videomae_file} (format videomae): 32 of 32 source tensors used, 31 slowmask tensors filled" in caplog.text
    assert report.new == [] and report.unmatched_stem() == ([], [])
    clip = torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        assert_close(model(clip), videomae_forward(videomae_state(), clip))


@pytest.mark.parametrize("case, status, message", [
    ("unknown", 4, "CheckpointError: {src} is a file of 1 tensors (first: fc.weight), in no format slowmask converts"),
    ("output", 2, "UsageError: --output {tmp}/out.pt: slowmask checkpoints are .pyth files; name one"),
])
def test_refusals_are_one_line_and_leave_nothing(case, status, message, tmp_path, capsys):
    source = tmp_path / "source.pth"
    torch.save({"fc.weight": torch.ones(1)}, source)
    output = tmp_path / ("out.pt" if case == "output" else "out.pyth")
    assert convert.main([str(source), "--output", str(output), "--cfg-out", str(tmp_path / "out.yaml")]) == status
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message.format(src=source, tmp=tmp_path) in err
    assert os.listdir(tmp_path) == ["source.pth"]


def test_a_pyslowfast_checkpoint_goes_through_the_same_report_and_keeps_its_config(tmp_path, caplog):
    cfg = load_config(DEMO_FT, ["NUM_GPUS", "0"])
    torch.manual_seed(0)
    model = build_model(cfg)
    source = tmp_path / "run.pyth"
    save_checkpoint(str(source), model, None, 4, cfg.dump())
    out, cfg_out = tmp_path / "out.pyth", tmp_path / "out.yaml"
    with caplog.at_level(logging.INFO):
        assert convert.main([str(source), "--output", str(out), "--cfg-out", str(cfg_out)]) == 0
    total = len(model.state_dict())
    assert f"(format pyslowfast): {total} of {total} source tensors used, {total} slowmask tensors filled" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    written = load_config(str(cfg_out), ["NUM_GPUS", "0"])
    assert written.MVIT.DEPTH == cfg.MVIT.DEPTH and written.TRAIN.CHECKPOINT_FILE_PATH == str(out)
    again = build_model(written)
    again.load_state_dict(read_checkpoint(str(out))["model_state"], strict=True)
    assert all(torch.equal(value, model.state_dict()[key]) for key, value in again.state_dict().items())
