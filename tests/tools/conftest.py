"""A tiny pretraining run on the demo videos, shared by the tools' tests."""

import pytest
from tool_scripts import DEMO_CFG, demo_overrides

from slowmask.config import load_config
from slowmask.engine.train import train


@pytest.fixture(scope="session")
def tiny_run(demo_data_dir, tmp_path_factory) -> str:
    """OUTPUT_DIR of one demo pretraining epoch: checkpoint, stdout.log, json_stats.log."""
    out_dir = str(tmp_path_factory.mktemp("tiny_run"))
    train(load_config(DEMO_CFG, demo_overrides(demo_data_dir, out_dir) + [
        "SOLVER.MAX_EPOCH", "1", "SOLVER.WARMUP_EPOCHS", "0.5", "LOG_PERIOD", "1"]))
    return out_dir
