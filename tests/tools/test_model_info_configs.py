"""tools/model_info.py --no-flops builds every yaml under configs/, the distillation
recipes included (their "teacher" target is registered by importing slowmask.models,
and their teacher's architecture is built without its checkpoint)."""

import glob
import logging
import os

import pytest
import torch

from tool_scripts import load_tool

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = sorted(glob.glob(os.path.join(REPO, "configs", "**", "*.yaml"), recursive=True))
model_info = load_tool("model_info")


def test_every_config_is_found():
    names = {os.path.relpath(path, os.path.join(REPO, "configs")) for path in CONFIGS}
    assert {"k400_ViT_B_MVD_PT.yaml", "demo/ViT_tiny_MVD_PT.yaml", "k400_ViT_B_VideoMAE_FT.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: os.path.relpath(path, REPO))
def test_model_info_builds_the_config(path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)  # TEACHER.CFG_FILE is relative to the working directory
    build_model = model_info.build_model

    def build_on_meta(cfg):  # shapes without memory: the ViT-L and MViT-L recipes build in a second
        with torch.device("meta"):
            return build_model(cfg)

    monkeypatch.setattr(model_info, "build_model", build_on_meta)
    assert model_info.main(["--cfg", path, "--no-flops"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("model: ") and "\nparameters: " in out


def test_a_distillation_recipe_is_counted_without_its_teachers_checkpoint(capsys, caplog, monkeypatch):
    monkeypatch.chdir(REPO)
    args = ["--cfg", "configs/demo/ViT_tiny_MVD_PT.yaml", "--no-flops", "TEACHER.CHECKPOINT_FILE_PATH", "missing.pyth"]
    with caplog.at_level(logging.WARNING):
        assert model_info.main(args) == 0
    assert "model: MAE" in capsys.readouterr().out
    assert "teacher: TEACHER.LOAD_WEIGHTS is False: its weights are random, its targets meaningless" in caplog.messages
