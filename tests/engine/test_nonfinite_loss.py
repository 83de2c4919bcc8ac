"""A non-finite loss stops the run (the default), naming where, or skips the step."""

import math
import os

import pytest
import torch
from torch import nn

import slowmask.engine.train as train_module
from slowmask.config import load_config
from slowmask import checkpoint
from slowmask.engine.step import TrainStep, masked_prediction_objective
from slowmask.engine.train import train
from slowmask.utils.logging import read_json_stats
from numerics import assert_close_at_scale

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_MaskFeat_PT.yaml")
ITERS_PER_EPOCH = 4  # 16 demo videos, batches of 4


def poisoned(objective, bad_calls):
    """`objective` whose loss is NaN on the given calls (1-based)."""
    calls = {"n": 0}

    def wrapped(model, batch):
        calls["n"] += 1
        loss, metrics = objective(model, batch)
        return (loss * math.nan if calls["n"] in bad_calls else loss), metrics

    return wrapped


def run(demo_data_dir, out_dir, monkeypatch, policy, bad_calls, max_share=0.25):
    monkeypatch.setattr(train_module, "masked_prediction_objective", poisoned(masked_prediction_objective, bad_calls))
    cfg = load_config(DEMO_CFG, [
        "DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(out_dir), "DATA_LOADER.NUM_WORKERS", "0",
        "TRAIN.BATCH_SIZE", "4", "SOLVER.MAX_EPOCH", "2", "SOLVER.WARMUP_EPOCHS", "0.5",
        "TRAIN.CHECKPOINT_PERIOD", "1", "LOG_PERIOD", "1", "TRAIN.NONFINITE_LOSS", policy,
        "TRAIN.NONFINITE_SKIP_MAX_SHARE", str(max_share),  # 1 of an epoch's 4 steps is not more than 0.25
    ])
    train(cfg)


def test_a_nan_loss_stops_the_run_naming_the_iteration_and_keeps_the_last_checkpoint(
    demo_data_dir, tmp_path, monkeypatch
):
    with pytest.raises(FloatingPointError, match=r"the loss is nan at epoch 2, iteration 2; the checkpoints"):
        run(demo_data_dir, tmp_path, monkeypatch, "stop", {ITERS_PER_EPOCH + 2})
    assert [os.path.basename(p) for p in checkpoint.epoch_checkpoints(str(tmp_path))] == ["checkpoint_epoch_00001.pyth"]
    state = checkpoint.read_checkpoint(checkpoint.last_checkpoint(str(tmp_path)))
    assert state["epoch"] == 0
    assert all(torch.isfinite(value).all() for value in state["model_state"].values())


def test_with_the_skip_switch_the_run_finishes_and_reports_the_skipped_step(demo_data_dir, tmp_path, monkeypatch):
    run(demo_data_dir, tmp_path, monkeypatch, "skip", {ITERS_PER_EPOCH + 2})
    state = checkpoint.read_checkpoint(checkpoint.last_checkpoint(str(tmp_path)))
    assert state["epoch"] == 1
    assert all(torch.isfinite(value).all() for value in state["model_state"].values())
    updates = {int(s["step"]) for s in state["optimizer_state"]["state"].values()}
    assert updates == {2 * ITERS_PER_EPOCH - 1}  # every step but the skipped one updated
    skips = [s for s in read_json_stats(str(tmp_path)) if s["_type"] == "nonfinite_skip"]
    assert skips == [{"_type": "nonfinite_skip", "epoch": 2, "iter": 2}]
    log = (tmp_path / "stdout.log").read_text()
    assert "skipped the step at epoch 2, iteration 2: the loss is not finite" in log
    assert "skipped 1 step(s) with a non-finite loss: epoch 2 iteration 2" in log


def nan_step(skip, accum_steps=1):
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    objective = lambda m, b: (m(b["x"]).mean() * b["scale"], {})  # noqa: E731
    return TrainStep(model, torch.optim.SGD(model.parameters(), lr=0.1), objective, torch.device("cpu"),
                     accum_steps=accum_steps, skip_nonfinite=skip)


def test_a_skipped_step_runs_no_backward_and_no_update():
    step = nan_step(skip=True)
    before = [p.detach().clone() for p in step.model.parameters()]
    metrics = step({"x": torch.ones(2, 3), "scale": torch.tensor(math.inf)})
    assert metrics == {"nonfinite_skip": 1.0}
    assert all(p.grad is None for p in step.model.parameters())
    assert all(torch.equal(p, q) for p, q in zip(before, step.model.parameters()))
    assert step({"x": torch.ones(2, 3), "scale": torch.tensor(1.0)})["nonfinite_skip"] == 0.0
    with pytest.raises(FloatingPointError, match="the loss is nan"):
        nan_step(skip=False)({"x": torch.ones(2, 3), "scale": torch.tensor(math.nan)})


def test_a_skip_inside_an_accumulation_cycle_drops_the_gradients_gathered_so_far():
    step = nan_step(skip=True, accum_steps=3)
    reference = nan_step(skip=True)
    good = {"x": torch.ones(2, 3), "scale": torch.tensor(1.0)}
    step({"x": torch.full((2, 3), 5.0), "scale": torch.tensor(1.0)})
    step({"x": torch.ones(2, 3), "scale": torch.tensor(math.nan)})
    assert step.pending_gradients
    step(good)  # the cycle ends with this micro-batch's gradient alone (rescaled to its mean)
    reference(good)
    assert not step.pending_gradients
    for p, q in zip(step.model.parameters(), reference.model.parameters()):
        assert_close_at_scale(p, q)
