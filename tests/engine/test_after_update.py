"""TrainStep's after-update callbacks: once per applied optimizer step, after it, never
per micro-batch or for a skipped update; a model's own `after_update` is wired in by the
training set-up, with the step's index in the run, also when the run resumes."""

import math

import pytest
import torch
from torch import nn

from slowmask.config import load_config
from slowmask.engine import train as train_module
from slowmask.engine.step import TrainStep, model_after_update, steps_before
from slowmask.engine.train import train
from slowmask.methods import build_model
from tool_scripts import DEMO_CFG, demo_overrides

CPU = torch.device("cpu")


def mse_objective(model, batch):
    return (model(batch["x"]) - batch["y"]).square().mean() * batch.get("scale", 1.0), {}


def batches(count, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return [{"x": torch.randn(4, 3, generator=generator), "y": torch.randn(4, 2, generator=generator)}
            for _ in range(count)]


def adamw_step_counts(optimizer):
    return {int(state["step"]) for state in optimizer.state.values()}


def test_under_accumulation_of_4_it_fires_once_per_optimizer_step():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
    indices = []
    step = TrainStep(model, optimizer, mse_objective, CPU, accum_steps=4, after_update=[indices.append])
    fired_after_each = []
    for batch in batches(8):
        step(batch)
        fired_after_each.append(len(indices))
    assert fired_after_each == [0, 0, 0, 1, 1, 1, 1, 2]
    assert indices == [0, 1]
    assert adamw_step_counts(optimizer) == {2}
    assert step.steps_done == 2


def test_the_callback_sees_the_updated_weights():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    before = model.weight.detach().clone()
    seen = []
    step = TrainStep(model, optimizer, mse_objective, CPU, accum_steps=2,
                     after_update=[lambda index: seen.append(model.weight.detach().clone())])
    step(batches(2)[0])
    step(batches(2)[1])
    assert len(seen) == 1
    assert torch.equal(seen[0], model.weight)
    assert (seen[0] - before).abs().max() > 1e-3 * before.abs().max()  # lr 0.5 moves it visibly


def test_a_skipped_non_finite_step_does_not_fire_and_the_next_index_jumps():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
    indices = []
    step = TrainStep(model, optimizer, mse_objective, CPU, skip_nonfinite=True, after_update=[indices.append])
    finite, also_finite = batches(2)
    outs = [step(finite), step({**finite, "scale": math.nan}), step(also_finite)]
    assert [out["nonfinite_skip"] for out in outs] == [0.0, 1.0, 0.0]
    assert indices == [0, 2]
    assert adamw_step_counts(optimizer) == {2}


def test_an_update_float16s_scaler_skips_for_overflow_does_not_fire():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
    # The first scale overflows the gradients (inf): GradScaler skips that update and
    # backs off to a scale of 100, at which the next update is applied.
    scaler = torch.amp.GradScaler("cpu", init_scale=1e38, backoff_factor=1e-36)
    indices = []
    step = TrainStep(model, optimizer, mse_objective, CPU, scaler=scaler, after_update=[indices.append])
    first, second = batches(2)
    step({**first, "scale": 1e3})
    assert indices == [] and optimizer.state == {}
    assert scaler.get_scale() == pytest.approx(100.0, rel=1e-6)  # float32's 1e38 * 1e-36
    step(second)
    assert indices == [1]
    assert adamw_step_counts(optimizer) == {1}


def test_a_model_takes_part_through_its_own_after_update():
    class Followed(nn.Linear):
        def after_update(self, step_index):
            pass

    followed = Followed(3, 2)
    assert model_after_update(followed) == [followed.after_update]
    assert model_after_update(nn.Linear(3, 2)) == []


def test_steps_before_counts_each_epochs_short_last_cycle():
    # 10 batches per epoch with cycles of 4: cycles of 4, 4 and 2 (the epoch's end closes it).
    assert steps_before(0, 0, 10, 4) == 0
    assert steps_before(1, 0, 10, 4) == 3
    assert steps_before(2, 8, 10, 4) == 8
    assert steps_before(3, 0, 10, 1) == 30


def test_training_calls_the_models_after_update_with_the_runs_step_index_also_on_resuming(
        demo_data_dir, tmp_path, monkeypatch):
    indices = []

    def followed_model(cfg):
        model = build_model(cfg)
        model.after_update = indices.append
        return model

    monkeypatch.setattr(train_module, "build_model", followed_model)
    opts = [*demo_overrides(demo_data_dir, str(tmp_path)), "SOLVER.WARMUP_EPOCHS", "0.5",
            "TRAIN.GRAD_ACCUM_STEPS", "2", "TRAIN.BATCH_SIZE", "4"]
    train(load_config(DEMO_CFG, [*opts, "SOLVER.MAX_EPOCH", "1"]))
    first_run = list(indices)
    train(load_config(DEMO_CFG, [*opts, "SOLVER.MAX_EPOCH", "2"]))
    # 16 demo videos in batches of 4: 4 batches, 2 optimizer steps per epoch.
    assert first_run == [0, 1]
    assert indices == [0, 1, 2, 3]
