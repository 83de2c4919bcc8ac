import copy

import pytest
import torch
from torch import nn

from slowmask.models.ema import MomentumSchedule, ema_update_


def _pair():
    torch.manual_seed(0)
    source = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    return source, copy.deepcopy(source)


def test_the_average_moves_by_the_momentum_rule_and_copies_buffers():
    source, average = _pair()
    before = {name: p.clone() for name, p in average.named_parameters()}
    with torch.no_grad():
        for p in source.parameters():
            p.add_(torch.arange(p.numel(), dtype=p.dtype).reshape(p.shape) / 7 + 1)
        source[1].running_mean.fill_(3.0)
    ema_update_(average, source, 0.9)
    for name, p in average.named_parameters():
        expected = 0.9 * before[name] + 0.1 * dict(source.named_parameters())[name]
        torch.testing.assert_close(p, expected, rtol=0, atol=1e-6 * expected.abs().max().item())
    assert torch.equal(average[1].running_mean, torch.full((4,), 3.0))


def test_momentum_one_keeps_the_average_and_zero_copies_the_source():
    source, average = _pair()
    with torch.no_grad():
        source[0].weight.add_(1.0)
    kept = average[0].weight.clone()
    ema_update_(average, source, 1.0)
    assert torch.equal(average[0].weight, kept)
    ema_update_(average, source, 0.0)
    assert torch.equal(average[0].weight, source[0].weight)


def test_modules_with_different_names_are_refused():
    with pytest.raises(ValueError, match="different parameters"):
        ema_update_(nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 2)), 0.5)


def test_the_schedule_is_linear_then_constant():
    schedule = MomentumSchedule(0.998, 1.0, total_steps=100)
    assert schedule(0) == pytest.approx(0.998)
    assert schedule(50) == pytest.approx(0.999)
    assert schedule(100) == schedule(1000) == pytest.approx(1.0)
    assert MomentumSchedule(0.99925, 0.99925, 10)(7) == 0.99925
    with pytest.raises(ValueError, match="must be in"):
        MomentumSchedule(1.5, 1.0, 10)
