"""Running a job's task under SLURM through submitit (tools/submit.py submits it).

SLURM starts one task per GPU on every node (no spawning): each task finds its place
(global rank SLURM_PROCID, local rank SLURM_LOCALID, world size SLURM_NTASKS) in
submitit's JobEnvironment and meets the others at the first node of the job's node
list. `SlurmTask` is checkpointable: on its preemption or time-out signal (SIGUSR2)
the training loop first writes a checkpoint (engine/preemption.py), then hands the
signal to submitit, which calls `checkpoint()`: that requeues the same task, and the
requeued job resumes from the checkpoint just written (TRAIN.AUTO_RESUME).
"""

import logging
import zlib
from typing import Any, Callable, Sequence, Tuple

from slowmask.config import load_config

from .distributed import Place
from .launch import check_world_size, run_at

logger = logging.getLogger(__name__)

# Rendezvous ports are drawn from [PORT_BASE, PORT_BASE + PORT_RANGE) by job id, so two
# jobs sharing a node rarely collide.
PORT_BASE = 20000
PORT_RANGE = 20000

INSTALL_HINT = "submitit is needed to run under SLURM: pip install 'slowmask[slurm]'"


def import_submitit() -> Any:
    """The submitit module, or ImportError saying how to install it."""
    try:
        import submitit
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    return submitit


def rendezvous_port(job_id: str) -> int:
    """A port in [PORT_BASE, PORT_BASE + PORT_RANGE) that every task of the job derives alike."""
    return PORT_BASE + zlib.crc32(job_id.encode()) % PORT_RANGE


def slurm_place(environment: Any, port: int = 0) -> Tuple[Place, str]:
    """(place, init_method) of this task from a submitit JobEnvironment: ranks from
    SLURM's task ids, `tcp://first-node:port` (port 0: derived from the job id)."""
    place = Place(environment.global_rank, environment.local_rank, environment.num_tasks)
    port = port or rendezvous_port(str(environment.job_id))
    return place, f"tcp://{environment.hostnames[0]}:{port}"


class SlurmTask:
    """One SLURM task of a job: `cfg_file` with `opts`, run by every `job` (train, then
    test) at this task's place. Picklable: submitit sends it to the nodes.

    Args:
        cfg_file: the yaml config.
        opts: KEY VALUE overrides (NUM_GPUS and NUM_SHARDS set to the allocation).
        jobs: the functions to run in turn, each `job(cfg)` (train, run_test).
        port: rendezvous port on the first node; 0 derives one from the job id.
    """

    def __init__(self, cfg_file: str, opts: Sequence[str], jobs: Sequence[Callable], port: int = 0) -> None:
        self.cfg_file = cfg_file
        self.opts = list(opts)
        self.jobs = list(jobs)
        self.port = port

    def __call__(self) -> None:
        cfg = load_config(self.cfg_file, self.opts)
        place, init_method = slurm_place(import_submitit().JobEnvironment(), self.port)
        check_world_size(cfg, place, "SLURM")
        logger.info("SLURM task: rank %d of %d (local %d), rendezvous %s",
                    place.rank, place.world_size, place.local_rank, init_method)
        for job in self.jobs:
            if place.world_size == 1:
                job(cfg)
            else:
                run_at(place, job, cfg, init_method)

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Called by submitit on preemption or time-out: requeue this same task; it
        resumes from the newest checkpoint written so far."""
        return import_submitit().helpers.DelayedSubmission(SlurmTask(self.cfg_file, self.opts, self.jobs, self.port))
