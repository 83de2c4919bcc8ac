"""Mixed precision: bf16 where supported, fp16 with a GradScaler otherwise; the
scaler's state goes through the checkpoint."""

import pytest
import torch
from torch import nn

from slowmask.config import get_cfg
from slowmask import checkpoint
from slowmask.engine import resume
from slowmask.engine.step import TrainStep, autocast_dtype, mixed_precision
from slowmask.engine.train import build_precision as mixed_precision_from_config

CPU, CUDA = torch.device("cpu"), torch.device("cuda", 0)


@pytest.fixture
def gpu_without_bf16(monkeypatch):
    """A CUDA device that lacks bfloat16 (e.g. a V100), as supports_bfloat16 sees it."""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)


def test_auto_picks_bf16_on_the_cpu_and_without_a_scaler():
    assert autocast_dtype("auto", CPU) == torch.bfloat16
    assert mixed_precision(True, "auto", CPU) == (torch.bfloat16, None)
    assert mixed_precision(False, "float16", CPU) == (None, None)


def test_auto_picks_fp16_with_a_scaler_on_a_gpu_without_bf16(gpu_without_bf16):
    assert autocast_dtype("auto", CUDA) == torch.float16
    with pytest.raises(ValueError, match="bfloat16 is not supported on cuda:0; use float16"):
        autocast_dtype("bfloat16", CUDA)


def test_the_key_forces_fp16_and_rejects_unknown_dtypes():
    dtype, scaler = mixed_precision(True, "float16", CPU)
    assert dtype == torch.float16 and isinstance(scaler, torch.amp.GradScaler)
    with pytest.raises(ValueError, match="mixed-precision dtype 'fp8'; supported: 'auto', 'bfloat16', 'float16'"):
        autocast_dtype("fp8", CPU)


def test_config_keys_choose_the_precision():
    cfg = get_cfg()
    cfg.TRAIN.MIXED_PRECISION = True
    assert mixed_precision_from_config(cfg, CPU) == (torch.bfloat16, None)
    cfg.TRAIN.MIXED_PRECISION_DTYPE = "float16"
    assert mixed_precision_from_config(cfg, CPU)[0] == torch.float16


def fp16_step(scaler):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    objective = lambda m, b: ((m(b["x"]).float() - 1.0).square().mean(), {})  # noqa: E731
    return TrainStep(model, optimizer, objective, CPU, autocast_dtype=torch.float16, scaler=scaler)


def test_fp16_steps_run_and_the_scaler_state_survives_a_checkpoint(tmp_path):
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=2)
    step = fp16_step(scaler)
    before = [p.detach().clone() for p in step.model.parameters()]
    for _ in range(3):
        metrics = step({"x": torch.randn(5, 4)})
    assert float(metrics["loss"]) > 0 and torch.isfinite(torch.as_tensor(metrics["grad_norm"]))
    assert not all(torch.equal(p, q) for p, q in zip(before, step.model.parameters()))
    assert scaler.get_scale() == 2.0**11  # grown once after two finite steps
    path = str(tmp_path / "c.pyth")
    checkpoint.save_checkpoint(path, step.model, step.optimizer, 0, "", scaler)
    restored = torch.amp.GradScaler("cpu")
    resume.resume(path, fp16_step(restored).model, None, restored)
    assert restored.state_dict() == scaler.state_dict()
