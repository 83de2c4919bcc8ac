"""The hooks that show a run as it goes, from the config: the progress bar and,
with TENSORBOARD.ENABLE, TensorBoard scalars."""

import os
from typing import List

from fvcore.common.config import CfgNode

from .loop import Hook
from .progress import ProgressBar
from .tensorboard import TensorBoardScalars, summary_writer

# TensorBoard's folder under OUTPUT_DIR when TENSORBOARD.LOG_DIR is "".
TENSORBOARD_DIR = "runs"


def build_monitoring_hooks(cfg: CfgNode) -> List[Hook]:
    """ProgressBar (a bar on a terminal, nothing otherwise), and TensorBoardScalars
    writing to TENSORBOARD.LOG_DIR (default OUTPUT_DIR/runs) when TENSORBOARD.ENABLE."""
    hooks: List[Hook] = [ProgressBar()]
    if cfg.TENSORBOARD.ENABLE:
        log_dir = cfg.TENSORBOARD.LOG_DIR or os.path.join(cfg.OUTPUT_DIR, TENSORBOARD_DIR)
        hooks.append(TensorBoardScalars(summary_writer(log_dir)))
    return hooks
