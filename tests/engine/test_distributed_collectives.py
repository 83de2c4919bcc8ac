"""The collectives of a multi-process job, in real gloo process groups on the CPU:
the set-up timeout and self-test, rank means of the logged metrics, agreement on a
non-finite loss, and gradient accumulation under DDP."""

import json
import math
import multiprocessing
import os
import socket
import time

import pytest
import torch
from torch import nn
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

from slowmask.config import get_cfg
from slowmask.engine.distributed import Place, join_process_group, leave_process_group, self_test
from slowmask.engine.hooks import RankMeanMetrics
from slowmask.engine.launch import run_at
from slowmask.engine.loop import TrainLoop
from slowmask.engine.step import TrainStep
from numerics import assert_close_at_scale

CPU = torch.device("cpu")
MICRO_BATCH = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank, world, port, scenario, out_dir):
    """A spawned rank: join, run `scenario(rank)`, write its result (or error) as JSON."""
    torch.set_num_threads(1)
    result = {}
    try:
        join_process_group("gloo", f"tcp://127.0.0.1:{port}", Place(rank, rank, world), timeout_s=30)
        try:
            result = {"value": scenario(rank)}
        finally:
            leave_process_group()
    except Exception as error:  # reported to the test, which checks the message
        result = {"error": f"{type(error).__name__}: {error}"}
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(result, f)


def run_ranks(scenario, tmp_path, world=2, timeout=60):
    """Results of `scenario(rank)` on `world` spawned ranks, in rank order."""
    context = multiprocessing.get_context("spawn")
    port = free_port()
    processes = [context.Process(target=_rank_main, args=(rank, world, port, scenario, str(tmp_path)))
                 for rank in range(world)]
    for process in processes:
        process.start()
    deadline = time.monotonic() + timeout
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    hung = [rank for rank, process in enumerate(processes) if process.is_alive()]
    for rank in hung:
        processes[rank].kill()
    assert not hung, f"ranks {hung} hung"
    return [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(world)]


def test_an_unreachable_rendezvous_fails_within_the_configured_timeout_naming_the_address():
    cfg = get_cfg()
    cfg.NUM_GPUS, cfg.DIST_RENDEZVOUS_TIMEOUT_S = 0, 2.0
    address = f"tcp://127.0.0.1:{free_port()}"
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=f"rank 1 of 2 could not join the process group at {address} .* within 2 s"):
        run_at(Place(rank=1, local_rank=1, world_size=2), lambda c: None, cfg, address)
    assert 1.9 < time.monotonic() - start < 3.0  # the store client alone would take ~1.75x


def _late_rank_1(rank):
    if rank == 1:
        time.sleep(2.0)
    self_test(timeout_s=0.5)


def test_the_self_test_names_a_rank_that_does_not_answer(tmp_path):
    rank0, _ = run_ranks(_late_rank_1, tmp_path)
    assert "DistributedError: collective self-test of rank 0 of 2: not every rank answered within 0.5 s" in rank0["error"]
    assert "Ranks 1 failed to pass monitoredBarrier" in rank0["error"]


def _metric_means(rank):
    """Rank means of the metrics through the hook, as rank 0 logs them."""
    loop = TrainLoop(lambda batch: {}, [], [], max_epoch=1)
    loop.metrics = {"loss": 1.0 + rank, "grad_norm": 10.0 * rank, "lr": 0.5}
    RankMeanMetrics().after_step(loop)
    return loop.metrics


def test_logged_metrics_are_means_over_the_ranks(two_ranks):
    assert [r["metric_means"] for r in two_ranks] == [{"loss": 1.5, "grad_norm": 5.0, "lr": 0.5}] * 2


def make_step(accum_steps=1, skip_nonfinite=False, distributed=False):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    wrapped = nn.parallel.DistributedDataParallel(model) if distributed else model

    def objective(m, batch):
        return (m(batch["x"]) - 1.0).square().mean() * batch["scale"], {}

    return TrainStep(wrapped, optimizer, objective, CPU, accum_steps=accum_steps, skip_nonfinite=skip_nonfinite)


def data(count, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(count, MICRO_BATCH, 4, generator=generator)


def _accumulate_under_ddp(rank):
    """Rank r takes micro-batches 2r, 2r+1 of each group of 4, two per update."""
    step = make_step(accum_steps=2, distributed=True)
    reductions = []

    def counted_allreduce(state, bucket):  # DDP's gradient all-reduce, counted
        reductions.append(bucket.index())
        return default_hooks.allreduce_hook(state, bucket)

    step.model.register_comm_hook(None, counted_allreduce)
    micro = data(8)
    for update in range(2):
        for j in range(2):
            step({"x": micro[4 * update + 2 * rank + j], "scale": torch.tensor(1.0)})
    return {"weights": [p.tolist() for p in step.model.module.parameters()], "reductions": len(reductions)}


def test_two_ranks_accumulating_two_micro_batches_equal_one_process_with_four(two_ranks):
    single = make_step()
    micro = data(8)
    for update in range(2):
        single({"x": micro[4 * update:4 * update + 4].flatten(0, 1), "scale": torch.tensor(1.0)})
    for result in two_ranks:
        assert result["accumulation"]["reductions"] == 2  # one per update: no_sync() before the last
        for got, want in zip(result["accumulation"]["weights"], single.model.parameters()):
            assert_close_at_scale(torch.tensor(got), want.detach())


def _nan_on_rank_1(rank, skip):
    step = make_step(skip_nonfinite=skip, distributed=True)
    x = data(2)
    bad = {"x": x[0], "scale": torch.tensor(math.nan if rank == 1 else 1.0)}
    try:
        first = step(bad)
    except FloatingPointError as error:
        return {"raised": str(error)}
    second = step({"x": x[1], "scale": torch.tensor(1.0)})  # DDP runs on after a forward without backward
    return {"first": first, "second_has_loss": "loss" in second,
            "weights": [p.tolist() for p in step.model.module.parameters()]}


def _scenarios(rank):
    """Everything a healthy 2-rank group checks, in one group (spawning costs seconds)."""
    self_test(timeout_s=10.0)
    return {
        "metric_means": _metric_means(rank),
        "accumulation": _accumulate_under_ddp(rank),
        "skip": _nan_on_rank_1(rank, skip=True),
        "stop": _nan_on_rank_1(rank, skip=False),
    }


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    return [r["value"] for r in run_ranks(_scenarios, tmp_path_factory.mktemp("ranks"))]


def test_all_ranks_skip_a_step_whose_loss_is_nan_on_one_of_them(two_ranks):
    rank0, rank1 = (r["skip"] for r in two_ranks)
    assert rank0["first"] == rank1["first"] == {"nonfinite_skip": 1.0}
    assert rank0["second_has_loss"] and rank0["weights"] == rank1["weights"]


def test_all_ranks_stop_on_a_nan_loss_of_one_of_them(two_ranks):
    rank0, rank1 = (r["stop"] for r in two_ranks)
    assert rank0["raised"].startswith("the loss is non-finite on another rank (here ")
    assert rank1["raised"] == "the loss is nan"
