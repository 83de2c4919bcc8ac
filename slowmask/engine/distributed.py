"""torch.distributed set-up and the few queries the engine needs."""

import datetime
import logging
import os
from dataclasses import dataclass
from typing import Mapping

import torch.distributed as dist

logger = logging.getLogger(__name__)

TORCHRUN_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE")


@dataclass(frozen=True)
class Place:
    """Where a process sits in the job: global rank, rank on its machine, job size."""

    rank: int
    local_rank: int
    world_size: int


def started_by_torchrun(environ: Mapping[str, str] = os.environ) -> bool:
    return all(name in environ for name in TORCHRUN_VARIABLES)


def torchrun_place(environ: Mapping[str, str] = os.environ) -> Place:
    return Place(int(environ["RANK"]), int(environ["LOCAL_RANK"]), int(environ["WORLD_SIZE"]))


def join_process_group(backend: str, init_method: str, place: Place, timeout_s: float) -> None:
    """Join the job's process group; a rendezvous that does not complete within
    `timeout_s` fails with a message naming this rank and the address."""
    try:
        dist.init_process_group(
            backend=backend,
            init_method=init_method,
            rank=place.rank,
            world_size=place.world_size,
            timeout=datetime.timedelta(seconds=timeout_s),
        )
    except Exception as error:  # the store and backends raise several unrelated types
        raise RuntimeError(
            f"rank {place.rank} of {place.world_size} could not join the process group at "
            f"{init_method} ({backend}) within {timeout_s:g} s: {error}"
        ) from error
    logger.info("rank %d of %d joined %s (%s)", place.rank, place.world_size, init_method, backend)


def leave_process_group() -> None:
    if is_distributed():
        dist.destroy_process_group()


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    return get_rank() == 0

