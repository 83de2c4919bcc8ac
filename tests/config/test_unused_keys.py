"""PySlowFast keys of features slowmask does not build: accepted, reported once, never
changing the model; switches that would change it fail clearly."""

import logging
import os

import pytest
import torch

from slowmask.config import ConfigError, get_cfg, load_config
from slowmask.config.unused_keys import UNSUPPORTED_SWITCHES, UNUSED_KEYS, unused_keys_set
from slowmask.models import build_model

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(REPO, "configs", "demo", "MViT_tiny_MaskFeat_PT.yaml")

# Sections a PySlowFast yaml or checkpoint dump carries, at non-default values.
PYSLOWFAST_EXTRAS = """
_BASE_: {base}
DETECTION:
  ALIGNED: False
  SPATIAL_SCALE_FACTOR: 32
MULTIGRID:
  EPOCH_FACTOR: 2.0
CONTRASTIVE:
  T: 0.1
  NUM_MLP_LAYERS: 3
AVA:
  BGR: True
DEMO:
  LABEL_FILE_PATH: labels.json
RESNET:
  DEPTH: 101
MODEL:
  FROZEN_BN: True
TENSORBOARD:
  MODEL_VIS:
    TOPK_PREDS: 3
    GRAD_CAM:
      COLORMAP: jet
"""


def write_extras(tmp_path, extras: str = PYSLOWFAST_EXTRAS) -> str:
    path = tmp_path / "pyslowfast.yaml"
    path.write_text(extras.format(base=DEMO))
    return str(path)


def state_shapes(cfg):
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in build_model(cfg).state_dict().items()}


def test_unused_keys_load_and_leave_the_model_unchanged(tmp_path):
    cfg = load_config(write_extras(tmp_path))
    assert cfg.DETECTION.SPATIAL_SCALE_FACTOR == 32 and cfg.TENSORBOARD.MODEL_VIS.GRAD_CAM.COLORMAP == "jet"
    assert state_shapes(cfg) == state_shapes(load_config(DEMO))


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_unused_keys_are_reported_in_one_line_once(tmp_path):
    path = write_extras(tmp_path)
    opts = ["DEMO.FPS", "25"]  # a set of keys no other test reported before
    logger = logging.getLogger("slowmask.config.unused_keys")
    collect, level = Collect(), logger.level
    logger.addHandler(collect)
    logger.setLevel(logging.INFO)
    try:
        cfg = load_config(path, opts)
        load_config(path, opts)
    finally:
        logger.removeHandler(collect)
        logger.setLevel(level)
    lines = [m for m in collect.messages if "accepted but not used" in m]
    assert len(lines) == 1
    assert "DETECTION.ALIGNED=False" in lines[0] and "TENSORBOARD.MODEL_VIS.GRAD_CAM.COLORMAP='jet'" in lines[0]
    assert "DEMO.FPS=25" in lines[0] and len(unused_keys_set(cfg)) == 12


def test_defaults_report_nothing():
    assert unused_keys_set(get_cfg()) == []


def test_slowmask_keeps_its_own_meaning_of_keys_it_defines():
    cfg = get_cfg()
    assert not [key for key in UNUSED_KEYS if key in ("TENSORBOARD.ENABLE", "MODEL.MODEL_NAME", "DATA.NUM_FRAMES")]
    assert cfg.TENSORBOARD.ENABLE is False and cfg.DATA.NUM_FRAMES == 8


@pytest.mark.parametrize("key, value", [("DETECTION.ENABLE", "True"), ("MULTIGRID.LONG_CYCLE", "True"),
                                        ("DATA.SSL_MOCOV2_AUG", "True"), ("DEMO.ENABLE", "True")])
def test_switches_that_would_change_the_model_or_training_fail(key, value):
    assert key in UNSUPPORTED_SWITCHES
    with pytest.raises(ConfigError, match=rf"not built in slowmask .*{key}=True \(must be False\)"):
        load_config(DEMO, [key, value])


@pytest.mark.parametrize("key", ["TRAIN.CHECKPOINT_TYPE", "TEST.CHECKPOINT_TYPE"])
def test_caffe2_checkpoints_are_out_of_scope(key):
    with pytest.raises(ConfigError, match=rf'{key} "caffe2": Caffe2 checkpoints are out of scope'):
        load_config(DEMO, [key, "caffe2"])
    with pytest.raises(ConfigError, match=rf"{key} is 'tf'; supported"):
        load_config(DEMO, [key, "tf"])
