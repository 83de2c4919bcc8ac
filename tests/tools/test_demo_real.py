"""`make demo-real` wires recipes that fit together: the checkpoint it fine-tunes and probes
is the last one its pretraining writes, and each fine-tuning config takes every encoder
tensor of its pretraining recipe, images and moving digits."""

import os
import re
import subprocess

import pytest
import torch

from slowmask.checkpoint import load_pretrained, save_checkpoint
from slowmask.config import load_config
from slowmask.data.transforms import view_box
from slowmask.methods import build_model

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def make_commands() -> str:
    """The commands `make demo-real` would run, printed (nothing run)."""
    return subprocess.run(["make", "-n", "-B", "-C", REPO, "demo-real", "PY=python"], capture_output=True, text=True,
                          check=True).stdout


def make_variables() -> dict:
    """The Makefile's variables as `make -p` prints them (nothing run)."""
    printed = subprocess.run(["make", "-pn", "-C", REPO, "demo-real", "PY=python"], capture_output=True, text=True,
                             check=True).stdout
    return dict(re.findall(r"^(\w+) :?= (.*)$", printed, re.MULTILINE))


@pytest.fixture(scope="module")
def variables():
    return make_variables()


@pytest.mark.parametrize("config, checkpoint", [("IMAGE_PT_CFG", "IMAGE_CHECKPOINT"), ("VIDEO_PT_CFG", "VIDEO_CHECKPOINT")])
def test_the_checkpoint_used_is_the_last_one_pretraining_writes(variables, config, checkpoint):
    cfg = load_config(os.path.join(REPO, variables[config]))
    epoch = int(re.search(r"checkpoint_epoch_(\d+)\.pyth$", variables[checkpoint]).group(1))
    assert epoch == cfg.SOLVER.MAX_EPOCH


def test_image_fine_tuning_takes_the_whole_pretrained_encoder(variables, tmp_path):
    pretrain_cfg = load_config(os.path.join(REPO, variables["IMAGE_PT_CFG"]))
    path = str(tmp_path / "checkpoint_epoch_00001.pyth")
    torch.manual_seed(0)
    save_checkpoint(path, build_model(pretrain_cfg), None, 1, pretrain_cfg.dump())
    finetune = build_model(load_config(os.path.join(REPO, variables["IMAGE_FT_CFG"])))
    report = load_pretrained(path, finetune)
    assert not report.fitted
    assert sorted(report.new) == ["head.projection.bias", "head.projection.weight"]
    assert not [name for name, why in report.skipped.items() if why != "pretraining only"]
    assert len(report.loaded) > 10


def test_video_fine_tuning_takes_the_whole_pretrained_encoder_on_clips_of_its_shape(variables, tmp_path):
    pretrain_cfg = load_config(os.path.join(REPO, variables["VIDEO_PT_CFG"]))
    finetune_cfg = load_config(os.path.join(REPO, variables["FT_CFG"]), ["MODEL.NUM_CLASSES", "10"])
    assert (pretrain_cfg.DATA.TRAIN_CROP_SIZE, pretrain_cfg.DATA.NUM_FRAMES) == (
        finetune_cfg.DATA.TRAIN_CROP_SIZE, finetune_cfg.DATA.NUM_FRAMES)
    path = str(tmp_path / "checkpoint_epoch_00001.pyth")
    torch.manual_seed(0)
    save_checkpoint(path, build_model(pretrain_cfg), None, 1, pretrain_cfg.dump())
    report = load_pretrained(path, build_model(finetune_cfg))
    assert not report.fitted
    # MaskFeat's encoder ends without the classifier's final norm: it and the head are new.
    assert sorted(report.new) == ["head.projection.bias", "head.projection.weight", "norm.bias", "norm.weight"]
    assert len(report.loaded) > 10


def test_the_probes_view_of_a_moving_digit_frame_is_the_whole_frame(variables):
    # The digit bounces off every border: a view narrower than the frame would cut it away.
    writer = re.search(r"make_demo_data\.py \S+moving_digits (.*?) --seed", make_commands().replace("\\\n", " "))
    options = writer.group(1).split()
    height, width = (int(options[options.index(flag) + 1]) for flag in ("--height", "--width"))
    crop = load_config(os.path.join(REPO, variables["VIDEO_PT_CFG"])).DATA.TRAIN_CROP_SIZE
    assert view_box(height, width, crop, crop, 0.5) == (0, 0, height, width)
