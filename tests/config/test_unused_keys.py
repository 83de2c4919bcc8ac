"""PySlowFast keys of features slowmask does not build: accepted, reported once after the
run's logging is set up, never changing the model; values that would change the run fail
clearly; every key has one decision, and the docs' table lists them all."""

import logging
import os

import pytest
import torch

from slowmask.config import ConfigError, get_cfg, load_config
from slowmask.config.unused_keys import (
    IGNORED_WHY, MAPPED, REFUSED, UNUSED_KEYS, audit_rows, report_unused_keys, unused_keys_set,
)
from slowmask.config.defaults import get_defaults
from slowmask.methods import build_model

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


def test_unused_keys_are_reported_in_one_line_once_per_run(tmp_path):
    cfg = load_config(write_extras(tmp_path), ["DEMO.FPS", "25", "OUTPUT_DIR", str(tmp_path)])
    logger = logging.getLogger("slowmask.config.unused_keys")
    collect, level = Collect(), logger.level
    logger.addHandler(collect)
    logger.setLevel(logging.INFO)
    try:
        report_unused_keys(cfg)
        report_unused_keys(cfg)
    finally:
        logger.removeHandler(collect)
        logger.setLevel(level)
    lines = [m for m in collect.messages if "accepted but not used" in m]
    assert len(lines) == 1
    assert "DETECTION.ALIGNED=False" in lines[0] and "TENSORBOARD.MODEL_VIS.GRAD_CAM.COLORMAP='jet'" in lines[0]
    assert "DEMO.FPS=25" in lines[0] and len(unused_keys_set(cfg)) == 12


def test_loading_alone_logs_nothing(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="slowmask"):
        load_config(write_extras(tmp_path), ["DEMO.FPS", "24"])
    assert "accepted but not used" not in caplog.text


def test_defaults_report_nothing():
    assert unused_keys_set(get_cfg()) == []


def test_slowmask_keeps_its_own_meaning_of_keys_it_defines():
    cfg = get_cfg()
    assert not [key for key in UNUSED_KEYS if key in ("TENSORBOARD.ENABLE", "MODEL.MODEL_NAME", "DATA.NUM_FRAMES")]
    assert cfg.TENSORBOARD.ENABLE is False and cfg.DATA.NUM_FRAMES == 8


@pytest.mark.parametrize("key, value", [("DETECTION.ENABLE", "True"), ("MULTIGRID.LONG_CYCLE", "True"),
                                        ("DATA.SSL_MOCOV2_AUG", "True"), ("DEMO.ENABLE", "True"),
                                        ("MODEL.FP16_ALLREDUCE", "True"), ("VIS_MASK.ENABLE", "True")])
def test_switches_that_would_change_the_model_or_training_fail(key, value):
    assert key in REFUSED
    with pytest.raises(ConfigError, match=rf"not built in slowmask .*{key}=True \(must be False: "):
        load_config(DEMO, [key, value])


@pytest.mark.parametrize("key, value, advice", [
    ("DATA.SKIP_ROWS", "2", "remove the skipped rows from the csv"),
    ("MULTIGRID.LONG_CYCLE_SAMPLING_RATE", "8", "set DATA.SAMPLING_RATE"),
    ("CONTRASTIVE.DELTA_CLIPS_MAX", "3.0", "remove the bound on their gap"),
])
def test_values_that_change_the_data_fail_with_what_to_do(key, value, advice):
    with pytest.raises(ConfigError, match=rf"{key}=.* \(must be .*: .*{advice}\)"):
        load_config(DEMO, [key, value])


def test_every_key_has_exactly_one_decision():
    assert set(REFUSED) <= set(UNUSED_KEYS)
    decisions = {key: decision for key, decision, _ in audit_rows()}
    assert len(decisions) == len(audit_rows()) == len(UNUSED_KEYS) + len(MAPPED) == 176
    counts = {kind: sum(d.startswith(kind) for d in decisions.values()) for kind in ("mapped", "ignored", "refused")}
    assert counts == {"mapped": 8, "ignored": 144, "refused": 24}
    defaults = get_defaults()
    for key in MAPPED:  # mapped keys are slowmask's own, with a default in defaults.py
        section, leaf = key.rsplit(".", 1)
        assert leaf in defaults[section] and key not in UNUSED_KEYS
    assert all(any(key.startswith(p) for p in IGNORED_WHY) for key, d in decisions.items() if d == "ignored")


def test_the_docs_table_lists_every_decision():
    with open(os.path.join(REPO, "docs", "pyslowfast_keys.md")) as f:
        table = [line for line in f.read().split("## The table", 1)[1].splitlines() if line.startswith("| `")]
    expected = [f"| `{key}` | {decision} | {why} |" for key, decision, why in audit_rows()]
    assert table == expected


@pytest.mark.parametrize("key", ["TRAIN.CHECKPOINT_TYPE", "TEST.CHECKPOINT_TYPE"])
def test_caffe2_checkpoints_are_out_of_scope(key):
    with pytest.raises(ConfigError, match=rf'{key} "caffe2": Caffe2 checkpoints are out of scope'):
        load_config(DEMO, [key, "caffe2"])
    with pytest.raises(ConfigError, match=rf"{key} is 'tf'; supported"):
        load_config(DEMO, [key, "tf"])
