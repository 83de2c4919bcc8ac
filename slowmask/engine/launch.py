"""Launching a job's processes, and SLURM tasks.

A job starts in one of four ways:

- one process (NUM_GPUS <= 1 and NUM_SHARDS 1): the job runs here;
- PySlowFast style: max(1, NUM_GPUS) processes spawned on each of NUM_SHARDS
  machines, this one being SHARD_ID, meeting at `--init_method tcp://host:port`;
- torchrun: the processes exist already (RANK, LOCAL_RANK, WORLD_SIZE are set) and
  meet through the environment (env://); CPU processes (NUM_GPUS 0) are one shard each,
  NUM_SHARDS taken from WORLD_SIZE (`torchrun_cpu_overrides`);
- SLURM through tools/submit.py: every task (`SlurmTask`) calls `run_at(place, ...)`
  with its place.

Every multi-process job checks, right after the rendezvous, that all ranks answer
(a collective self-test, distributed.py), so a broken rank fails the start instead of
hanging the job. The launch arguments are checked before any process starts
(`check_launch`), and so are the devices (devices.py); the data, checkpoints and output
folder a run will read and write are checked before that by the preflight
(preflight.py, called by tools/run_net.py). Until the first training step a stop signal
ends each process at once (StoppedBeforeStart, exit 128 + the signal); a parent that
spawned the processes passes its signals on to them (utils/stop_signals.py). After it,
the training loop's StopOnSignal hook checkpoints first (hooks/preemption.py).

Under SLURM one task runs per GPU on every node (no spawning): each task finds its place
(global rank SLURM_PROCID, local rank SLURM_LOCALID, world size SLURM_NTASKS) in
submitit's JobEnvironment and meets the others at the first node of the job's node
list. `SlurmTask` is checkpointable: on its preemption or time-out signal (SIGUSR2)
the training loop first writes a checkpoint, then hands the signal to submitit, which
calls `checkpoint()`: that requeues the same task, and the requeued job resumes from
the checkpoint just written (TRAIN.AUTO_RESUME).
"""

import atexit
import logging
import os
import signal
import sys
import urllib.parse
import zlib
from typing import Any, Callable, List, Mapping, Optional, Sequence, Tuple

import torch.multiprocessing as mp
from fvcore.common.config import CfgNode
from torch.multiprocessing import ProcessExitedException

from slowmask import geometry
from slowmask.config import ConfigError, load_config
from slowmask.utils.custom_modules import import_custom_modules
from slowmask.utils.errors import StoppedBeforeStart, StoppedBySignal
from slowmask.utils.stop_signals import Forwarder, stopping_at_once

from .devices import check_devices, use_local_gpu
from .distributed import (
    Place,
    join_process_group,
    leave_process_group,
    self_test,
    started_by_torchrun,
    torchrun_place,
)

logger = logging.getLogger(__name__)


Job = Callable[[CfgNode], None]


def processes_per_machine(cfg: CfgNode) -> int:
    return geometry.world_size(cfg.NUM_GPUS, 1)


def world_size(cfg: CfgNode) -> int:
    return geometry.world_size(cfg.NUM_GPUS, cfg.NUM_SHARDS)


def backend(cfg: CfgNode) -> str:
    """DIST_BACKEND on GPUs; gloo on CPUs, where NCCL cannot run."""
    return cfg.DIST_BACKEND if cfg.NUM_GPUS > 0 else "gloo"


def check_world_size(cfg: CfgNode, place: Place, launcher: str) -> None:
    """ConfigError unless the processes a launcher started match the config's job size."""
    if place.world_size != world_size(cfg):
        cpu = (f" (on the CPU each process counts as a shard: set NUM_SHARDS {place.world_size}, or leave it at 1 "
               "under torchrun)") if cfg.NUM_GPUS == 0 else ""
        raise ConfigError(
            f"{launcher} started WORLD_SIZE={place.world_size} processes but the config asks for "
            f"max(1, NUM_GPUS={cfg.NUM_GPUS}) x NUM_SHARDS={cfg.NUM_SHARDS} = {world_size(cfg)}; "
            f"make them agree (batch size and learning-rate scaling depend on them){cpu}"
        )


def torchrun_cpu_overrides(cfg: CfgNode, environ: Mapping[str, str] = os.environ) -> List[str]:
    """["NUM_SHARDS", WORLD_SIZE] when torchrun started CPU processes (NUM_GPUS 0) and
    NUM_SHARDS is left at 1: on the CPU each process is one shard, so the job's size is
    torchrun's. [] otherwise: GPU processes, or a NUM_SHARDS set (check_launch compares)."""
    if not started_by_torchrun(environ) or cfg.NUM_GPUS != 0 or cfg.NUM_SHARDS != 1:
        return []
    processes = torchrun_place(environ).world_size
    return ["NUM_SHARDS", str(processes)] if processes != 1 else []


INIT_METHOD_FORMS = "tcp://HOST:PORT, env:// (with MASTER_ADDR and MASTER_PORT set) or file:///PATH"


def init_method_problem(init_method: str, environ: Mapping[str, str] = os.environ) -> Optional[str]:
    """Why processes cannot meet at `init_method` (--init_method), or None."""
    url = urllib.parse.urlparse(init_method)
    try:
        port = url.port
    except ValueError:  # not a number, or outside 0..65535
        port = None
    if url.scheme == "tcp" and url.hostname and port:
        return None
    if url.scheme == "env":
        missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if not environ.get(name)]
        if not missing:
            return None
        return f"--init_method env:// reads {' and '.join(missing)} from the environment, which are not set"
    if url.scheme == "file" and url.path:
        return None
    return f"--init_method {init_method!r} is not an address the processes can meet at; use {INIT_METHOD_FORMS}"


def check_launch(cfg: CfgNode, init_method: str, environ: Mapping[str, str] = os.environ) -> None:
    """ConfigError, before any process starts, for launch arguments that cannot work:
    a malformed --init_method of a multi-process job, or torchrun's WORLD_SIZE against
    the config's. (NUM_GPUS, NUM_SHARDS and SHARD_ID are checked with the config.)"""
    if started_by_torchrun(environ):
        check_world_size(cfg, torchrun_place(environ), "torchrun")
    elif world_size(cfg) > 1:
        problem = init_method_problem(init_method, environ)
        if problem:
            raise ConfigError(problem)


def launch(cfg: CfgNode, job: Job, init_method: str = "tcp://localhost:9999") -> None:
    """Run `job(cfg)` in every process of the job."""
    check_launch(cfg, init_method)
    check_devices(cfg)
    if started_by_torchrun():
        if cfg.NUM_GPUS == 0:
            logger.info("torchrun started %d CPU processes (NUM_GPUS 0): each is one shard, NUM_SHARDS %d",
                        cfg.NUM_SHARDS, cfg.NUM_SHARDS)
        run_at(torchrun_place(), job, cfg, "env://")
    elif world_size(cfg) == 1:
        with stopping_at_once():
            job(cfg)
    else:
        _spawn(cfg, job, init_method)


def _spawn(cfg: CfgNode, job: Job, init_method: str) -> None:
    """This machine's processes of the job; this one only waits for them, passing its
    stop signals on: they checkpoint, or stop at once before their first step."""
    with Forwarder() as forward:
        processes = mp.start_processes(_spawned, args=(job, cfg, init_method), nprocs=processes_per_machine(cfg),
                                       join=False, start_method="spawn")
        forward.to(processes.pids())
        try:
            while not processes.join():
                pass
        except ProcessExitedException as error:
            # A child that got the signal while it started (importing, before its own
            # handlers) died of it, or of the KeyboardInterrupt of a Ctrl-C.
            if forward.received is None:
                raise
            raise StoppedBeforeStart(forward.received, signal.Signals(forward.received).name) from error


def _spawned(local_rank: int, job: Job, cfg: CfgNode, init_method: str) -> None:
    import_custom_modules(cfg.DATA.CUSTOM_MODULES)  # a spawned process starts without the user's registrations
    per_machine = processes_per_machine(cfg)
    place = Place(cfg.SHARD_ID * per_machine + local_rank, local_rank, world_size(cfg))
    try:
        run_at(place, job, cfg, init_method)
    except StoppedBySignal as stop:
        # torch's spawn wrapper relays an Exception to the parent (which finds the stop by
        # its name in the traceback), then exits; the exit ends here, without the
        # interpreter's teardown (seconds with torch loaded), so that the parent ends the
        # run at once. Nothing is left to write but the logs.
        atexit.register(_exit_after_logs, 1)
        raise RuntimeError(f"rank {place.rank} stopped") from stop


def _exit_after_logs(status: int) -> None:
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def run_at(place: Place, job: Job, cfg: CfgNode, init_method: str) -> None:
    """Run `job(cfg)` as the process at `place`: join the process group (within
    DIST_RENDEZVOUS_TIMEOUT_S), check that every rank answers, run, leave. A stop
    signal before the job's first training step ends it at once (StoppedBeforeStart)."""
    with stopping_at_once():
        use_local_gpu(cfg, place.local_rank)
        join_process_group(
            backend(cfg), init_method, place, cfg.DIST_RENDEZVOUS_TIMEOUT_S, cfg.DIST_COLLECTIVE_TIMEOUT_S
        )
        try:
            self_test(cfg.DIST_RENDEZVOUS_TIMEOUT_S, init_method)
            job(cfg)
        finally:
            leave_process_group()


# SLURM tasks (submitit).

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
