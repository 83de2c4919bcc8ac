"""Pretraining end to end on the demo videos, on the CPU."""

import os

import pytest
import torch

from slowmask.config import load_config
from slowmask.data import build_loader
from slowmask import checkpoint
from slowmask.engine import resume
from slowmask.engine.optim import build_optimizer
from slowmask.engine.step import TrainStep, masked_prediction_objective
from slowmask.engine.train import train
from slowmask.methods import build_model
from slowmask.utils.logging import read_json_stats

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_MaskFeat_PT.yaml")


def demo_cfg(data_dir, out_dir, *opts):
    return load_config(DEMO_CFG, [
        "DATA.PATH_TO_DATA_DIR", data_dir, "OUTPUT_DIR", str(out_dir),
        "DATA_LOADER.NUM_WORKERS", "0", "LOG_PERIOD", "1", *opts,
    ])


def epoch_losses(out_dir):
    return [s["loss"] for s in read_json_stats(str(out_dir)) if s["_type"] == "train_epoch"]


def test_pretraining_lowers_the_loss_and_leaves_checkpoints_and_logs(demo_data_dir, tmp_path):
    cfg = demo_cfg(demo_data_dir, tmp_path, "SOLVER.MAX_EPOCH", "6", "SOLVER.WARMUP_EPOCHS", "1.0",
                   "TRAIN.CHECKPOINT_PERIOD", "3")
    train(cfg)
    losses = epoch_losses(tmp_path)
    assert len(losses) == 6
    assert losses[-1] < 0.9 * losses[0], losses
    assert sorted(os.listdir(tmp_path / "checkpoints")) == [
        "checkpoint_epoch_00003.pyth", "checkpoint_epoch_00006.pyth"
    ]
    log = (tmp_path / "stdout.log").read_text()
    assert "eta:" in log and "lr:" in log and "mem_mb:" in log
    iteration = [s for s in read_json_stats(str(tmp_path)) if s["_type"] == "train_iter"][0]
    assert {"epoch", "iter", "loss", "lr", "eta", "data_time", "step_time", "mem_mb"} <= set(iteration)


def test_auto_resume_continues_after_the_last_checkpoint(demo_data_dir, tmp_path):
    short = ["SOLVER.WARMUP_EPOCHS", "0.5"]
    train(demo_cfg(demo_data_dir, tmp_path, "SOLVER.MAX_EPOCH", "1", *short))
    train(demo_cfg(demo_data_dir, tmp_path, "SOLVER.MAX_EPOCH", "2", *short))
    epochs = [s["epoch"] for s in read_json_stats(str(tmp_path)) if s["_type"] == "train_epoch"]
    assert epochs == ["1/1", "2/2"]
    state = torch.load(checkpoint.last_checkpoint(str(tmp_path)), weights_only=True)
    assert state["epoch"] == 1 and "MViT" in state["cfg"]


def test_checkpoint_round_trip_gives_the_same_next_step(demo_data_dir, tmp_path):
    cfg = demo_cfg(demo_data_dir, tmp_path, "SOLVER.OPTIMIZING_METHOD", "adamw")
    batch = next(iter(build_loader(cfg, "train")))

    def make_step(seed):
        torch.manual_seed(seed)
        model = build_model(cfg)
        optimizer = build_optimizer(cfg, model)
        return model, optimizer, TrainStep(model, optimizer, masked_prediction_objective, torch.device("cpu"))

    model, optimizer, step = make_step(0)
    step(batch)
    path = checkpoint.checkpoint_path(str(tmp_path), 1)
    checkpoint.save_checkpoint(path, model, optimizer, 0, cfg.dump())
    fresh_model, fresh_optimizer, fresh_step = make_step(1)
    resume.resume(path, fresh_model, fresh_optimizer)
    torch.manual_seed(2)
    loss = step(batch)["loss"]
    torch.manual_seed(2)
    assert fresh_step(batch)["loss"] == loss
    for name, value in model.state_dict().items():
        assert torch.equal(value, fresh_model.state_dict()[name]), name


def test_non_finite_loss_stops_with_the_iteration_named(demo_data_dir, tmp_path):
    from slowmask.engine.loop import TrainLoop

    def exploding_step(batch):
        raise FloatingPointError("the loss is nan")

    loop = TrainLoop(exploding_step, [0, 1], hooks=[], max_epoch=1)
    with pytest.raises(FloatingPointError, match="the loss is nan at epoch 1, iteration 1"):
        loop.run()


def test_fewer_items_than_a_batch_is_a_clear_error(demo_data_dir, tmp_path):
    with pytest.raises(ValueError, match="fewer than one batch of 64; lower TRAIN.BATCH_SIZE"):
        train(demo_cfg(demo_data_dir, tmp_path, "TRAIN.BATCH_SIZE", "64"))


def test_build_hooks_lists_every_hook_of_a_run_in_order(demo_data_dir, tmp_path, hooks_of):
    pretraining = demo_cfg(demo_data_dir, tmp_path, "TRAIN.KILL_LOSS_EXPLOSION_FACTOR", "0")
    assert [type(hook).__name__ for hook in hooks_of(pretraining)] == [
        "DataEpoch", "LRSchedule", "AccumulationEpochEnd", "MetricsLog", "PeriodicCheckpoint", "ProgressBar",
        "BadDataGuard", "StopOnSignal",
    ]
    classifier = demo_cfg(demo_data_dir, tmp_path, "MASK.ENABLE", "False", "TRAIN.NONFINITE_LOSS", "skip",
                          "TRAIN.KILL_LOSS_EXPLOSION_FACTOR", "3.0")
    assert [type(hook).__name__ for hook in hooks_of(classifier)] == [
        "DataEpoch", "LRSchedule", "AccumulationEpochEnd", "NonFiniteSkipLog", "LossExplosionStop", "MetricsLog",
        "PeriodicCheckpoint", "ProgressBar", "PeriodicValidation", "BadDataGuard", "NonFiniteSkipStop", "StopOnSignal",
    ]
