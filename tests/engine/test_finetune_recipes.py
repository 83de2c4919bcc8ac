"""Each pretraining recipe has a fine-tuning recipe whose model fits it: a VideoMAE
checkpoint (fixed sine-cosine table, no class token) loads whole into the VideoMAE
fine-tuning config, and into a config with separate tables and a class token it warns,
naming what was dropped and created. The demo's ViT fine-tuning configs run."""

import logging
import os

import pytest
import torch

from slowmask.config import load_config
from slowmask.engine.checkpoint import load_pretrained, save_checkpoint
from slowmask.models import build_model
from tool_scripts import load_tool

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
run_net = load_tool("run_net")


def demo(name: str) -> str:
    return os.path.join(REPO, "configs", "demo", name)


def built(name: str):
    torch.manual_seed(0)
    return build_model(load_config(demo(name)))


@pytest.fixture(scope="module")
def videomae_checkpoint(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("videomae") / "checkpoint_epoch_00001.pyth")
    save_checkpoint(path, built("ViT_tiny_VideoMAE_PT.yaml"), None, 0, "")
    return path


def test_a_videomae_checkpoint_loads_whole_into_the_videomae_fine_tuning_config(videomae_checkpoint, caplog):
    with caplog.at_level(logging.INFO):
        report = load_pretrained(videomae_checkpoint, built("ViT_tiny_VideoMAE_FT.yaml"))
    assert report.unmatched_stem() == ([], [])
    assert not [name for name, why in report.skipped.items() if why != "pretraining only"]
    assert report.new == ["head.projection.weight", "head.projection.bias"]
    assert "pos_embed" in report.loaded and "patch_embed.proj.weight" in report.loaded
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_videomae_checkpoint_in_a_model_with_a_class_token_warns_naming_the_tensors(videomae_checkpoint, caplog):
    with caplog.at_level(logging.INFO):
        report = load_pretrained(videomae_checkpoint, built("ViT_tiny_FT.yaml"))
    assert report.unmatched_stem() == (
        ["pos_embed"], ["cls_token", "pos_embed_spatial", "pos_embed_temporal", "pos_embed_class"]
    )
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert (
        f"{videomae_checkpoint} does not fit this model's stem: dropped from the checkpoint: pos_embed; created by "
        "the model (not pretrained): cls_token, pos_embed_spatial, pos_embed_temporal, pos_embed_class." in warnings[0]
    )


@pytest.mark.parametrize("pretrain, finetune", [
    ("ViT_tiny_MAE_PT.yaml", "ViT_tiny_FT.yaml"),
    ("ViT_tiny_VideoMAE_PT.yaml", "ViT_tiny_VideoMAE_FT.yaml"),
])
def test_the_demo_vit_fine_tuning_configs_run(pretrain, finetune, demo_data_dir, tmp_path):
    model = built(pretrain)
    start = tmp_path / "pretrained.pyth"
    save_checkpoint(str(start), model, None, 0, "")
    out = tmp_path / "ft"
    assert run_net.main([
        "--cfg", demo(finetune), "DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(out),
        "TRAIN.CHECKPOINT_FILE_PATH", str(start), "DATA_LOADER.NUM_WORKERS", "0", "SOLVER.MAX_EPOCH", "1",
        "SOLVER.WARMUP_EPOCHS", "0.5", "TRAIN.EVAL_PERIOD", "1", "TEST.NUM_ENSEMBLE_VIEWS", "1",
        "TEST.NUM_SPATIAL_CROPS", "1",
    ]) == 0
    log = (out / "stdout.log").read_text()
    assert "does not fit this model's stem" not in log
    assert "2 new (initialized): head.projection.weight, head.projection.bias" in log
    assert os.path.isfile(out / "test_results.json")
