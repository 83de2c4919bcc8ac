"""Batch-norm statistics across processes: BN.NORM_TYPE "sync_batchnorm" (PySlowFast's
name) turns every BatchNorm layer into torch's SyncBatchNorm in a multi-process GPU
run, so statistics are taken over the whole batch of the job. The default,
"batchnorm", keeps per-process statistics (as PySlowFast). MViT and ViT have no
batch norm; the linear-probing head (MODEL.LINEAR_PROBE) has one.
"""

from typing import Callable, Dict

import torch
from torch import nn

from .distributed import is_distributed


def _synchronized(model: nn.Module, device: torch.device) -> nn.Module:
    if not is_distributed():
        return model  # one process: its statistics are the job's
    if device.type == "cpu":
        raise ValueError(
            'BN.NORM_TYPE "sync_batchnorm" needs GPUs: torch\'s SyncBatchNorm does not run on the CPU; '
            'use BN.NORM_TYPE "batchnorm" (per-process statistics) for CPU runs'
        )
    return nn.SyncBatchNorm.convert_sync_batchnorm(model)


# BN.NORM_TYPE -> (model, device) -> the model with that batch norm (the same parameters).
NORM_TYPES: Dict[str, Callable[[nn.Module, torch.device], nn.Module]] = {
    "batchnorm": lambda model, device: model,
    "sync_batchnorm": _synchronized,
}


def with_norm_type(model: nn.Module, norm_type: str, device: torch.device) -> nn.Module:
    """`model` with its BatchNorm layers of `norm_type`; ValueError for other types."""
    if norm_type not in NORM_TYPES:
        raise ValueError(f"BN.NORM_TYPE is {norm_type!r}; supported: {', '.join(map(repr, NORM_TYPES))}")
    return NORM_TYPES[norm_type](model, device)
