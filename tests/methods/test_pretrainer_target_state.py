"""MaskedPretrainer and a target with state: refused unless the target declares
`state_in_checkpoint`, then saved under `target.` and seen by the optimizer where it
requires gradient; a target without state changes no checkpoint key."""

import pytest
import torch
from torch import nn

from slowmask.methods import MaskedPretrainer
from slowmask.models import build_loss
from slowmask.targets import HOGTarget


class Encoder(nn.Module):
    """encoder(x, mask) -> ([(B, 8, 4)], [(2, 2, 2)])."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(3, 4)

    def forward(self, x, mask):
        return [self.proj(nn.functional.adaptive_avg_pool3d(x, (2, 2, 2)).flatten(2).transpose(1, 2))], [(2, 2, 2)]


class Head(nn.Module):
    def forward(self, features):
        return features


class ProjectedTarget(nn.Module):
    """target(x, grid) -> (B, 8, 4): a linear map of the pooled clip, its weight a
    parameter that the optimizer does not train (as an EMA copy's)."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(3, 4)
        self.proj.requires_grad_(False)

    def dim(self, patch):
        return 4

    def forward(self, x, grid):
        return self.proj(nn.functional.adaptive_avg_pool3d(x, tuple(grid)).flatten(2).transpose(1, 2))


class CheckpointedTarget(ProjectedTarget):
    state_in_checkpoint = True


def test_a_target_with_undeclared_state_is_refused_naming_the_fix():
    with pytest.raises(ValueError) as raised:
        MaskedPretrainer(Encoder(), Head(), ProjectedTarget(), build_loss("mse"))
    assert str(raised.value) == (
        "the target has parameters or persistent buffers ['proj.weight', 'proj.bias']: register buffers with "
        "persistent=False, or declare `state_in_checkpoint = True` on the target to save its state in the "
        "checkpoint under `target.`"
    )


def test_a_declared_target_state_is_saved_under_target_and_loads_back():
    torch.manual_seed(0)
    model = MaskedPretrainer(Encoder(), Head(), CheckpointedTarget(), build_loss("mse"))
    state = model.state_dict()
    assert list(state) == ["proj.weight", "proj.bias", "target.proj.weight", "target.proj.bias"]
    fresh = MaskedPretrainer(Encoder(), Head(), CheckpointedTarget(), build_loss("mse"))
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh.target.proj.weight, model.target.proj.weight, rtol=0, atol=0)
    trained = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trained == ["encoder.proj.weight", "encoder.proj.bias"]
    mask = torch.zeros(2, 2, 2, 2, dtype=torch.bool)
    mask[:, :, 0] = True
    out = model(torch.randn(2, 3, 4, 8, 8), mask)
    assert out["pred"].shape == out["target"].shape == (8, 4) and not out["target"].requires_grad


def test_a_target_without_state_adds_no_checkpoint_key():
    model = MaskedPretrainer(Encoder(), Head(), HOGTarget(), build_loss("mse"))
    assert list(model.state_dict()) == ["proj.weight", "proj.bias"]
