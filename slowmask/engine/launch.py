"""Starting the job's processes: one process per GPU per machine, or one on the CPU."""

import logging
from typing import Callable

import torch
from fvcore.common.config import CfgNode

logger = logging.getLogger(__name__)


def world_size(cfg: CfgNode) -> int:
    return max(1, cfg.NUM_GPUS) * cfg.NUM_SHARDS


def launch(cfg: CfgNode, job: Callable[[CfgNode], None]) -> None:
    """Run `job(cfg)` in every process of the job. Today: a single process."""
    if world_size(cfg) > 1:
        raise NotImplementedError(
            f"NUM_GPUS={cfg.NUM_GPUS} x NUM_SHARDS={cfg.NUM_SHARDS} asks for "
            f"{world_size(cfg)} processes; multi-process (DDP) launch is not available yet. "
            "Run with NUM_GPUS 1 (one GPU) or NUM_GPUS 0 (CPU) and NUM_SHARDS 1."
        )
    job(cfg)


def select_device(cfg: CfgNode) -> torch.device:
    """cuda when NUM_GPUS > 0 (and a GPU is visible), else cpu."""
    if cfg.NUM_GPUS == 0:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError(
            f"NUM_GPUS is {cfg.NUM_GPUS} but no CUDA device is visible; "
            "set NUM_GPUS 0 to run on the CPU"
        )
    return torch.device("cuda", torch.cuda.current_device())
