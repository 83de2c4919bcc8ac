"""BN.NORM_TYPE: per-process BatchNorm, or SyncBatchNorm in multi-process GPU runs."""

import socket

import pytest
import torch
from torch import nn

from slowmask.engine.distributed import Place, join_process_group, leave_process_group
from slowmask.engine.step import with_norm_type

CPU, CUDA = torch.device("cpu"), torch.device("cuda", 0)


def probe_head():
    """A linear-probe head as MAE's: BatchNorm without affine before the projection."""
    return nn.Sequential(nn.BatchNorm1d(8, affine=False), nn.Linear(8, 3), nn.BatchNorm1d(3))


@pytest.fixture
def one_process_group():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    join_process_group("gloo", f"tcp://127.0.0.1:{port}", Place(0, 0, 1), timeout_s=10)
    yield
    leave_process_group()


def test_single_process_runs_keep_their_batchnorm():
    model = probe_head()
    assert with_norm_type(model, "batchnorm", CPU) is model
    assert with_norm_type(model, "sync_batchnorm", CUDA) is model
    assert not any(isinstance(m, nn.SyncBatchNorm) for m in model.modules())
    with pytest.raises(ValueError, match="BN.NORM_TYPE is 'sub_batchnorm'; supported: 'batchnorm', 'sync_batchnorm'"):
        with_norm_type(model, "sub_batchnorm", CPU)


def test_distributed_gpu_runs_get_syncbatchnorm_with_the_same_parameters(one_process_group):
    model = probe_head()
    weight, names = model[2].weight, list(model.state_dict())
    converted = with_norm_type(model, "sync_batchnorm", CUDA)  # conversion only: no GPU computes here
    assert [type(m) for m in converted] == [nn.SyncBatchNorm, nn.Linear, nn.SyncBatchNorm]
    assert converted[2].weight is weight and list(converted.state_dict()) == names


def test_distributed_cpu_runs_cannot_sync_batchnorm(one_process_group):
    with pytest.raises(ValueError, match="SyncBatchNorm does not run on the CPU"):
        with_norm_type(probe_head(), "sync_batchnorm", CPU)
