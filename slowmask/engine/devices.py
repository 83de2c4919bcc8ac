"""The device each process computes on, and whether this machine has the GPUs the
config asks for.

NUM_GPUS counts the GPUs of each machine (NUM_SHARDS the machines): each process of a
GPU job takes the GPU of its local rank (`use_local_gpu`, called by launch.run_at before
the job starts), and every part that builds on a device asks `select_device` for it
(training, testing, feature extraction, probes). A machine showing fewer GPUs than
NUM_GPUS fails before any process starts (`check_devices`, DeviceError, exit status 2),
and in the preflight (`device_problem`).
"""

from typing import Optional

import torch
from fvcore.common.config import CfgNode

from slowmask.utils.errors import SlowmaskError


class DeviceError(SlowmaskError, RuntimeError):
    """NUM_GPUS asks for more GPUs than this machine shows."""


def device_problem(cfg: CfgNode) -> Optional[str]:
    """Why this machine cannot give each process the GPU NUM_GPUS promises, or None."""
    wanted = cfg.NUM_GPUS
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if wanted <= visible:
        return None
    if visible == 0:
        return f"NUM_GPUS is {wanted} but no CUDA device is visible; set NUM_GPUS 0 to run on the CPU"
    return (f"NUM_GPUS is {wanted} but this machine shows {visible} CUDA device(s); set NUM_GPUS {visible} "
            "(it counts the GPUs of each machine, NUM_SHARDS the machines)")


def check_devices(cfg: CfgNode) -> None:
    """DeviceError, before any process starts, when NUM_GPUS cannot be served here."""
    problem = device_problem(cfg)
    if problem:
        raise DeviceError(problem)


def use_local_gpu(cfg: CfgNode, local_rank: int) -> None:
    """Make the GPU of `local_rank` (this process's rank on its machine) the current one
    of a GPU job, where `select_device` finds it; nothing on the CPU."""
    if cfg.NUM_GPUS > 0 and torch.cuda.is_available():
        torch.cuda.set_device(local_rank)


def select_device(cfg: CfgNode) -> torch.device:
    """The GPU of this process when NUM_GPUS > 0 (and one is visible), else the CPU."""
    if cfg.NUM_GPUS == 0:
        return torch.device("cpu")
    check_devices(cfg)
    return torch.device("cuda", torch.cuda.current_device())
