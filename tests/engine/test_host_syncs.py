"""The training step leaves its metrics on the device; the log reads them together at
its period. With CUDA: a step makes the host wait for the device not once."""

import pytest
import torch
from torch import nn

from slowmask.engine.hooks import as_floats
from slowmask.engine.step import LossWatch, NonFiniteLossError, TrainStep


def _regression_step(device: torch.device, autocast_dtype=None) -> TrainStep:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 1)).to(device)

    def objective(m, batch):
        return (m(batch["x"]).float() - batch["y"]).square().mean(), {"samples": float(batch["x"].shape[0])}

    return TrainStep(model, torch.optim.AdamW(model.parameters(), lr=1e-3), objective, device,
                     clip_grad_l2norm=1.0, autocast_dtype=autocast_dtype)


def _batch(seed: int, pin: bool = False):
    generator = torch.Generator().manual_seed(seed)
    batch = {"x": torch.randn(4, 8, generator=generator), "y": torch.randn(4, 1, generator=generator)}
    return {k: v.pin_memory() for k, v in batch.items()} if pin else batch


def test_the_step_returns_device_scalars_that_the_log_reads_at_once():
    step = _regression_step(torch.device("cpu"))
    rows = [step(_batch(seed)) for seed in range(3)]
    for metrics in rows:
        assert torch.is_tensor(metrics["loss"]) and metrics["loss"].shape == ()
        assert torch.is_tensor(metrics["grad_norm"]) and not metrics["loss"].requires_grad
        assert metrics["samples"] == 4.0
    read = as_floats([{**m, "step_time": 0.25} for m in rows])
    for metrics, floats in zip(rows, read):
        assert floats == {"loss": metrics["loss"].item(), "samples": 4.0, "grad_norm": metrics["grad_norm"].item(),
                          "step_time": 0.25}
        assert all(type(v) is float for v in floats.values())


def test_on_the_cpu_a_nonfinite_loss_stops_at_its_own_step():
    watch = LossWatch(torch.device("cpu"))
    assert not watch.deferred
    watch.watch(torch.tensor(1.5))
    watch.check()
    watch.watch(torch.tensor(float("inf")))
    with pytest.raises(NonFiniteLossError, match=r"^the loss is inf$"):
        watch.check()


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, None])
def test_a_cuda_step_never_waits_for_the_device(dtype):
    device = torch.device("cuda")
    step = _regression_step(device, autocast_dtype=dtype)
    step(_batch(0, pin=True))  # the first step allocates the optimizer's state
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        rows = [step(_batch(seed, pin=True)) for seed in range(1, 4)]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert all(m["loss"].device.type == "cuda" for m in rows)
    assert all(v > 0 for v in as_floats(rows)[-1].values())


@pytest.mark.gpu
def test_a_cuda_nan_stops_the_run_at_the_next_step_or_before_a_checkpoint():
    step = _regression_step(torch.device("cuda"))
    assert step.losses.deferred
    bad = _batch(0)
    bad["y"][0, 0] = float("nan")
    step(bad)  # read one step late
    with pytest.raises(NonFiniteLossError, match="the loss is nan .read after the step that made it."):
        step(_batch(1))
    step = _regression_step(torch.device("cuda"))
    step(bad)
    with pytest.raises(NonFiniteLossError, match="the loss is nan"):
        step.raise_if_nonfinite()
