"""Shared set-up of the engine's tests: the hooks a config gives a training run."""

from typing import Callable, List

import pytest
import torch
from fvcore.common.config import CfgNode
from torch import nn

from slowmask.engine.resume import ResumePoint
from slowmask.engine.loop import Hook
from slowmask.engine.step import TrainStep, masked_prediction_objective
from slowmask.engine.train import build_hooks

CPU = torch.device("cpu")


@pytest.fixture
def hooks_of() -> Callable[[CfgNode], List[Hook]]:
    """cfg -> the hooks train.build_hooks lists for a run of `cfg` (one process), around
    a tiny model on the CPU; the loader is never read while the hooks are built."""

    def build(cfg: CfgNode) -> List[Hook]:
        model = nn.Linear(2, 2)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        step = TrainStep(model, optimizer, masked_prediction_objective, CPU)
        return build_hooks(cfg, model, optimizer, None, step, [], ResumePoint(), CPU)

    return build
