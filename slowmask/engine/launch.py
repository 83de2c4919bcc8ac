"""Starting the job's processes, in one of four ways:

- one process (NUM_GPUS <= 1 and NUM_SHARDS 1): the job runs here;
- PySlowFast style: max(1, NUM_GPUS) processes spawned on each of NUM_SHARDS
  machines, this one being SHARD_ID, meeting at `--init_method tcp://host:port`;
- torchrun: the processes exist already (RANK, LOCAL_RANK, WORLD_SIZE are set) and
  meet through the environment (env://);
- SLURM through tools/submit.py: every task calls `run_at(place, ...)` with its place.

Every multi-process job checks, right after the rendezvous, that all ranks answer
(a collective self-test), so a broken rank fails the start instead of hanging the job.
"""

import logging
from typing import Callable, Optional

import torch
import torch.multiprocessing as mp
from fvcore.common.config import CfgNode

from .distributed import (
    Place,
    join_process_group,
    leave_process_group,
    self_test,
    started_by_torchrun,
    torchrun_place,
)
from .preemption import ignoring_stop_signals
from slowmask.utils.errors import SlowmaskError

logger = logging.getLogger(__name__)

Job = Callable[[CfgNode], None]


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


def processes_per_machine(cfg: CfgNode) -> int:
    return max(1, cfg.NUM_GPUS)


def world_size(cfg: CfgNode) -> int:
    return processes_per_machine(cfg) * cfg.NUM_SHARDS


def backend(cfg: CfgNode) -> str:
    """DIST_BACKEND on GPUs; gloo on CPUs, where NCCL cannot run."""
    return cfg.DIST_BACKEND if cfg.NUM_GPUS > 0 else "gloo"


def check_world_size(cfg: CfgNode, place: Place, launcher: str) -> None:
    """ValueError unless the processes a launcher started match the config's job size."""
    if place.world_size != world_size(cfg):
        raise ValueError(
            f"{launcher} started WORLD_SIZE={place.world_size} processes but the config asks for "
            f"max(1, NUM_GPUS={cfg.NUM_GPUS}) x NUM_SHARDS={cfg.NUM_SHARDS} = {world_size(cfg)}; "
            "make them agree (batch size and learning-rate scaling depend on them)"
        )


def launch(cfg: CfgNode, job: Job, init_method: str = "tcp://localhost:9999") -> None:
    """Run `job(cfg)` in every process of the job."""
    check_devices(cfg)
    if started_by_torchrun():
        place = torchrun_place()
        check_world_size(cfg, place, "torchrun")
        run_at(place, job, cfg, "env://")
    elif world_size(cfg) == 1:
        job(cfg)
    else:
        # This process only waits: a stop signal is for its children, which checkpoint and exit.
        with ignoring_stop_signals():
            mp.spawn(_spawned, args=(job, cfg, init_method), nprocs=processes_per_machine(cfg), join=True)


def _spawned(local_rank: int, job: Job, cfg: CfgNode, init_method: str) -> None:
    per_machine = processes_per_machine(cfg)
    place = Place(cfg.SHARD_ID * per_machine + local_rank, local_rank, world_size(cfg))
    run_at(place, job, cfg, init_method)


def run_at(place: Place, job: Job, cfg: CfgNode, init_method: str) -> None:
    """Run `job(cfg)` as the process at `place`: join the process group (within
    DIST_RENDEZVOUS_TIMEOUT_S), check that every rank answers, run, leave."""
    if cfg.NUM_GPUS > 0 and torch.cuda.is_available():
        torch.cuda.set_device(place.local_rank)
    join_process_group(
        backend(cfg), init_method, place, cfg.DIST_RENDEZVOUS_TIMEOUT_S, cfg.DIST_COLLECTIVE_TIMEOUT_S
    )
    try:
        self_test(cfg.DIST_RENDEZVOUS_TIMEOUT_S)
        job(cfg)
    finally:
        leave_process_group()


def select_device(cfg: CfgNode) -> torch.device:
    """The GPU of this process when NUM_GPUS > 0 (and one is visible), else the CPU."""
    if cfg.NUM_GPUS == 0:
        return torch.device("cpu")
    check_devices(cfg)
    return torch.device("cuda", torch.cuda.current_device())
