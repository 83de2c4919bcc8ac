"""Gradient accumulation in TrainStep: k micro-batches of B equal one batch of kB."""

import pytest
import torch
from torch import nn

from slowmask.engine.step import TrainStep
from numerics import assert_close_at_scale

DEVICE = torch.device("cpu")


def mse_objective(model, batch):
    return (model(batch["x"]) - batch["y"]).square().mean(), {}


def make_step(seed=0, optimizer="sgd", **kwargs):
    torch.manual_seed(seed)
    # No batch-statistics layer: the gradient of a mean over 2B is the mean of two B-means.
    model = nn.Sequential(nn.Linear(6, 8), nn.LayerNorm(8), nn.GELU(), nn.Linear(8, 3))
    make = {"sgd": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
            "adamw": lambda p: torch.optim.AdamW(p, lr=0.01)}[optimizer]
    return TrainStep(model, make(model.parameters()), mse_objective, DEVICE, **kwargs)


def batches(count, size, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return [{"x": torch.randn(size, 6, generator=generator), "y": torch.randn(size, 3, generator=generator)}
            for _ in range(count)]


def joined(parts):
    return {key: torch.cat([part[key] for part in parts]) for key in parts[0]}


def assert_same_weights(a, b):
    for (name, p), (_, q) in zip(a.model.named_parameters(), b.model.named_parameters()):
        assert_close_at_scale(p, q, msg=name)


# Plain SGD sees the loss scale (the division by k); clipping must act on the summed gradient.
@pytest.mark.parametrize("optimizer,clip", [("sgd", None), ("sgd", 0.05), ("adamw", None)])
def test_two_micro_batches_of_b_equal_one_batch_of_2b(optimizer, clip):
    micro = batches(6, 4)
    accumulated = make_step(optimizer=optimizer, accum_steps=2, clip_grad_l2norm=clip)
    whole = make_step(optimizer=optimizer, clip_grad_l2norm=clip)
    for i in range(0, 6, 2):
        accumulated(micro[i])
        assert accumulated.pending_gradients
        accumulated(micro[i + 1])
        assert not accumulated.pending_gradients
        whole(joined(micro[i:i + 2]))
    assert_same_weights(accumulated, whole)


def test_updates_and_clipping_happen_only_at_the_cycle_end():
    step = make_step(accum_steps=3, clip_grad_l2norm=1e-3)
    before = [p.detach().clone() for p in step.model.parameters()]
    first, second = step(batches(1, 4)[0]), step(batches(1, 4, seed=2)[0])
    assert "grad_norm" not in first and "grad_norm" not in second
    assert all(torch.equal(p, q) for p, q in zip(before, step.model.parameters()))
    third = step(batches(1, 4, seed=3)[0])
    assert third["grad_norm"] > 1e-3  # the norm before clipping
    assert not all(torch.equal(p, q) for p, q in zip(before, step.model.parameters()))


def test_an_epoch_end_closes_a_short_cycle_with_the_mean_of_its_micro_batches():
    micro = batches(3, 4)
    accumulated = make_step(accum_steps=2)
    whole = make_step()
    accumulated(micro[0])
    accumulated(micro[1])
    accumulated.mark_epoch_end()
    accumulated(micro[2])
    assert not accumulated.pending_gradients
    whole(joined(micro[:2]))
    whole(micro[2])
    assert_same_weights(accumulated, whole)


def test_pending_gradients_is_read_only_and_accum_steps_must_be_positive():
    step = make_step(accum_steps=2)
    with pytest.raises(AttributeError):
        step.pending_gradients = False
    with pytest.raises(ValueError, match="accum_steps must be at least 1, got 0"):
        make_step(accum_steps=0)
