"""Starting the job's processes, in one of four ways:

- one process (NUM_GPUS <= 1 and NUM_SHARDS 1): the job runs here;
- PySlowFast style: max(1, NUM_GPUS) processes spawned on each of NUM_SHARDS
  machines, this one being SHARD_ID, meeting at `--init_method tcp://host:port`;
- torchrun: the processes exist already (RANK, LOCAL_RANK, WORLD_SIZE are set) and
  meet through the environment (env://);
- SLURM through tools/submit.py: every task calls `run_at(place, ...)` with its place.

Every multi-process job checks, right after the rendezvous, that all ranks answer
(a collective self-test), so a broken rank fails the start instead of hanging the job.
The launch arguments are checked before any process starts (`check_launch`). Until the
first training step a stop signal ends each process at once (StoppedBeforeStart, exit
128 + the signal); a parent that spawned the processes passes its signals on to them.
"""

import atexit
import logging
import os
import signal
import sys
import urllib.parse
from typing import Callable, Mapping, Optional

import torch
import torch.multiprocessing as mp
from fvcore.common.config import CfgNode
from torch.multiprocessing import ProcessExitedException

from slowmask.config import ConfigError
from slowmask.utils.errors import SlowmaskError, StoppedBeforeStart, StoppedBySignal
from slowmask.utils.stop_signals import Forwarder, stopping_at_once

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
    """ConfigError unless the processes a launcher started match the config's job size."""
    if place.world_size != world_size(cfg):
        raise ConfigError(
            f"{launcher} started WORLD_SIZE={place.world_size} processes but the config asks for "
            f"max(1, NUM_GPUS={cfg.NUM_GPUS}) x NUM_SHARDS={cfg.NUM_SHARDS} = {world_size(cfg)}; "
            "make them agree (batch size and learning-rate scaling depend on them)"
        )


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
        if cfg.NUM_GPUS > 0 and torch.cuda.is_available():
            torch.cuda.set_device(place.local_rank)
        join_process_group(
            backend(cfg), init_method, place, cfg.DIST_RENDEZVOUS_TIMEOUT_S, cfg.DIST_COLLECTIVE_TIMEOUT_S
        )
        try:
            self_test(cfg.DIST_RENDEZVOUS_TIMEOUT_S, init_method)
            job(cfg)
        finally:
            leave_process_group()


def select_device(cfg: CfgNode) -> torch.device:
    """The GPU of this process when NUM_GPUS > 0 (and one is visible), else the CPU."""
    if cfg.NUM_GPUS == 0:
        return torch.device("cpu")
    check_devices(cfg)
    return torch.device("cuda", torch.cuda.current_device())
