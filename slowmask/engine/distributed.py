"""torch.distributed set-up and the few collectives the engine needs.

Set-up fails loudly instead of hanging: the rendezvous has its own timeout and names
the rank and address that waited (a DistributedError, exit status 5); a collective
self-test right after it names the ranks that did not answer. The waits for other ranks
run in Python, so a stop signal ends them at once.
"""

import datetime
import itertools
import logging
import os
import socket
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
import torch.distributed as dist
from torch import Tensor

from slowmask.utils.errors import SlowmaskError

logger = logging.getLogger(__name__)

TORCHRUN_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE")
# Seconds between two attempts to reach the rendezvous address, and between two looks
# at how many ranks have arrived there.
PROBE_INTERVAL_S = 0.2
MEET_INTERVAL_S = 0.05
JOINED_KEY = "joined"


# Joins of the process group by this process: each uses its own keys in the rendezvous
# store. Under torchrun that store is the agent's and outlives a process group, and torch
# numbers a new default group from 0 again, so a second job in the same processes
# (testing after training) would read the keys the first one left and connect to sockets
# that are closed. Every rank runs the same jobs in the same order, so the counts agree.
_JOINS = itertools.count()


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


class DistributedError(SlowmaskError, RuntimeError):
    """The processes of a job could not meet or talk: names the rank and the address."""

    kind = "distributed"


def join_process_group(
    backend: str, init_method: str, place: Place, timeout_s: float, collective_timeout_s: float = 1800.0
) -> None:
    """Join the job's process group. A rendezvous that does not complete within
    `timeout_s` fails with a DistributedError naming this rank and the address; afterwards
    each collective may wait `collective_timeout_s` for a late rank (the two differ: a
    misconfigured address should fail in minutes, while rank 0 may validate or write a
    checkpoint for longer than that as the others wait at the next all-reduce).

    The ranks meet in Python, polling the store (see `_meet`): torch's own waits for the
    other ranks block in C++, where a stop signal's Python handler cannot run until they
    time out."""
    deadline = time.monotonic() + timeout_s
    who = f"rank {place.rank} of {place.world_size}"
    address = _store_address(init_method)
    if place.rank != 0 and address is not None and not wait_for_listener(*address, timeout_s):
        raise DistributedError(
            f"{who} could not join the process group at {init_method} ({backend}) within {timeout_s:g} s "
            f"(DIST_RENDEZVOUS_TIMEOUT_S): nobody listens at {address[0]}:{address[1]} "
            "(is rank 0 running, and are the address and port right?)"
        )
    try:
        store = _open_store(init_method, place, timeout_s)
        _meet(store, place, deadline, f"{init_method} ({backend})")
        dist.init_process_group(
            backend=backend,
            store=store,
            rank=place.rank,
            world_size=place.world_size,
            timeout=datetime.timedelta(seconds=collective_timeout_s),
        )
    except SlowmaskError:  # the meeting's own error
        raise
    except Exception as error:  # the store and backends raise several unrelated types
        raise DistributedError(
            f"{who} could not join the process group at {init_method} ({backend}) within {timeout_s:g} s: {error}"
        ) from error
    logger.info("%s joined %s (%s)", who, init_method, backend)


def _open_store(init_method: str, place: Place, timeout_s: float) -> dist.Store:
    """The rendezvous store, opened without waiting for the other ranks: a TCPStore
    (served by rank 0, or by torchrun's agent when it hosts one), else torch's store for
    the init method (file://). Prefixed by the torchrun attempt and by this process's
    join (see _JOINS), so that neither a restarted worker nor a second job reads the keys
    of the one before."""
    timeout = datetime.timedelta(seconds=timeout_s)
    address = _store_address(init_method)
    if address is None:
        store, _, _ = next(dist.rendezvous(init_method, place.rank, place.world_size, timeout=timeout))
    else:
        host, port = address
        store = dist.TCPStore(
            host, port, place.world_size, is_master=place.rank == 0 and not _agent_serves(host, port),
            timeout=timeout, wait_for_workers=False, multi_tenant=True,
        )
    store.set_timeout(timeout)
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    return dist.PrefixStore(f"slowmask/attempt_{attempt}/job_{next(_JOINS)}", store)


def _agent_serves(host: str, port: int, environ: Mapping[str, str] = os.environ) -> bool:
    """torchrun's agent hosts the store at its MASTER_ADDR:MASTER_PORT (all ranks are clients)."""
    return (environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True" and environ.get("MASTER_ADDR") == host
            and environ.get("MASTER_PORT") == str(port))


def _meet(store: dist.Store, place: Place, deadline: float, where: str) -> None:
    """Count this rank in at the store, then wait until all ranks are, sleeping between
    looks so that a stop signal ends the wait at once; DistributedError at `deadline`."""
    store.add(JOINED_KEY, 1)
    said = False
    while True:
        joined = store.add(JOINED_KEY, 0)
        if joined >= place.world_size:
            return
        if time.monotonic() >= deadline:
            raise DistributedError(
                f"rank {place.rank} of {place.world_size} waited at {where} until DIST_RENDEZVOUS_TIMEOUT_S "
                f"ran out: {joined} of {place.world_size} ranks arrived; start the missing ones (each machine "
                "with its --shard_id) or check --init_method and --num_shards"
            )
        if not said:
            logger.info("rank %d of %d waits at %s for %d more rank(s)", place.rank, place.world_size, where,
                        place.world_size - joined)
            said = True
        time.sleep(MEET_INTERVAL_S)


def _store_address(init_method: str, environ: Mapping[str, str] = os.environ) -> Optional[Tuple[str, int]]:
    """(host, port) of the rendezvous store of a tcp:// or env:// init method, else None."""
    url = urllib.parse.urlparse(init_method)
    if url.scheme == "tcp" and url.hostname and url.port:
        return url.hostname, url.port
    if url.scheme == "env" and "MASTER_ADDR" in environ and "MASTER_PORT" in environ:
        return environ["MASTER_ADDR"], int(environ["MASTER_PORT"])
    return None


def wait_for_listener(host: str, port: int, timeout_s: float) -> bool:
    """True as soon as `host:port` accepts a TCP connection, False after `timeout_s`.

    The rendezvous store's own client retries with back-off and gives up only after
    about twice its timeout; this probe holds ranks other than 0 to the configured time.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        try:
            with socket.create_connection((host, port), timeout=remaining):
                return True
        except OSError:
            time.sleep(min(PROBE_INTERVAL_S, max(0.0, deadline - time.monotonic())))


def self_test(timeout_s: float, init_method: str = "") -> None:
    """Check that every rank answers within `timeout_s`: a monitored barrier (on the
    job's group under gloo, on a gloo side group otherwise, since only gloo implements
    it), then one all-reduce on the job's backend. Raises DistributedError naming this
    rank, the job's address (`init_method`) and, on rank 0, the ranks that did not answer."""
    where = f"rank {dist.get_rank()} of {dist.get_world_size()}" + (f" at {init_method}" if init_method else "")
    timeout = datetime.timedelta(seconds=timeout_s)
    group = None if dist.get_backend() == "gloo" else dist.new_group(backend="gloo", timeout=timeout)
    try:
        dist.monitored_barrier(group=group, timeout=timeout, wait_all_ranks=True)
    except RuntimeError as error:
        raise DistributedError(
            f"collective self-test of {where}: not every rank answered within {timeout_s:g} s "
            f"(DIST_RENDEZVOUS_TIMEOUT_S) — {error}"
        ) from error
    finally:
        if group is not None:
            dist.destroy_process_group(group)
    count = torch.ones(1, device=_collective_device())
    dist.all_reduce(count)
    if int(count.item()) != dist.get_world_size():
        raise DistributedError(
            f"collective self-test of {where}: an all-reduce over {dist.get_world_size()} ranks "
            f"summed to {int(count.item())}"
        )
    logger.info("collective self-test passed: %d ranks answered", dist.get_world_size())


def _collective_device() -> torch.device:
    """Where the job's backend takes tensors: this process's GPU under nccl, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def any_rank(flag: bool) -> bool:
    """True when `flag` is True on any rank (one all-reduce when distributed)."""
    if not is_distributed():
        return flag
    value = torch.tensor([float(flag)], device=_collective_device())
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def mean_over_ranks(metrics: Dict[str, float]) -> Dict[str, float]:
    """The mean of each metric over all ranks (one all-reduce when distributed; every
    rank must pass the same names)."""
    if not is_distributed() or not metrics:
        return metrics
    names = sorted(metrics)
    values = torch.tensor([float(metrics[name]) for name in names], dtype=torch.float64, device=_collective_device())
    dist.all_reduce(values)
    values /= dist.get_world_size()
    means = dict(zip(names, values.tolist()))
    return {name: means[name] for name in metrics}


def gather_rows(rows: Tensor) -> List[Tensor]:
    """Every rank's `rows` (n_r, ...) on every rank, in rank order, on the CPU; ranks may
    hold different numbers of rows (trailing shape and dtype must agree). Bits are kept.

    all_gather needs one size on all ranks, so the rows are padded to the largest n_r and
    trimmed after; under nccl they travel on this process's GPU."""
    if not is_distributed():
        return [rows]
    device = _collective_device()
    count = torch.tensor([rows.shape[0]], dtype=torch.int64, device=device)
    counts = [torch.zeros_like(count) for _ in range(dist.get_world_size())]
    dist.all_gather(counts, count)
    sizes = [int(c.item()) for c in counts]
    if max(sizes) == 0:
        return [rows.cpu() for _ in sizes]
    padded = rows.new_zeros((max(sizes), *rows.shape[1:]), device=device)
    padded[: rows.shape[0]] = rows.to(device)
    gathered = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(gathered, padded)
    return [part[:size].cpu() for part, size in zip(gathered, sizes)]


def gather_objects(value: Any) -> List[Any]:
    """Every rank's picklable `value` on every rank, in rank order (for small values:
    names, paths; torch moves the pickled bytes to this process's GPU under nccl)."""
    if not is_distributed():
        return [value]
    values: List[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return values


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
