"""Pretraining losses by name: MSE (MaskFeat, MAE) and L1 (SimMIM)."""

import pytest
import torch

from slowmask.models import build_loss


def test_l1_is_the_mean_absolute_error():
    pred, target = torch.tensor([[1.0, -2.0], [0.5, 0.0]]), torch.tensor([[0.0, 0.0], [0.0, 1.0]])
    assert torch.isclose(build_loss("l1")(pred, target), torch.tensor((1 + 2 + 0.5 + 1) / 4))
    assert torch.isclose(build_loss("mse")(pred, target), torch.tensor((1 + 4 + 0.25 + 1) / 4))


def test_unknown_loss_lists_the_known_ones():
    with pytest.raises(ValueError, match="MODEL.LOSS_FUNC 'huber' is not a registered loss; registered: .*'l1', 'mse'"):
        build_loss("huber")
