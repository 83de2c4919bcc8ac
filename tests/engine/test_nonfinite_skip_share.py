"""TRAIN.NONFINITE_LOSS skip stops the run (status 7) when more than
TRAIN.NONFINITE_SKIP_MAX_SHARE of an epoch's steps, or all of them, are skipped."""

import math
import os
import time

import pytest

import slowmask.engine.train as train_module
from slowmask.config import ConfigError, load_config
from slowmask import checkpoint
from slowmask.engine.hooks import NonFiniteSkipStop, TooManySkippedSteps
from slowmask.engine.loop import TrainLoop
from slowmask.engine.step import masked_prediction_objective
from slowmask.engine.train import train
from slowmask.utils.errors import EXIT_STATUS, run_tool

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_MaskFeat_PT.yaml")


def skip_flags(skipped_steps):
    """A step that reports `nonfinite_skip` 1 at the given 1-based calls, 0 elsewhere; it
    records every call."""
    calls = []

    def step(batch):
        calls.append(batch)
        return {"loss": 1.0, "nonfinite_skip": float(len(calls) in skipped_steps)}

    step.calls = calls
    return step


def run_guarded(max_share, skipped_steps, steps_per_epoch=12, epochs=2, start_iteration=0):
    step = skip_flags(skipped_steps)
    loop = TrainLoop(step, list(range(steps_per_epoch - start_iteration)), [NonFiniteSkipStop(max_share)], epochs)
    loop.iters_per_epoch = steps_per_epoch
    loop.run(0, start_iteration)
    return step.calls


def test_eleven_of_twelve_skipped_steps_stop_the_run_as_soon_as_the_share_is_certain():
    with pytest.raises(TooManySkippedSteps) as raised:
        run_guarded(0.1, set(range(2, 13)))
    # 2 skipped of the epoch's 12 steps is 17 %, over 0.1: certain after the 3rd step.
    assert str(raised.value) == (
        "epoch 1, iteration 3: 2 of the 3 steps run so far (12 in the epoch) were skipped for a non-finite loss, "
        "17% of the epoch's steps, more than TRAIN.NONFINITE_SKIP_MAX_SHARE = 0.1: the training diverges (the "
        "checkpoints written so far are intact). Lower SOLVER.BASE_LR or clip the gradients "
        "(SOLVER.CLIP_GRAD_L2NORM), find the first bad step with TRAIN.NONFINITE_LOSS stop, or raise "
        "TRAIN.NONFINITE_SKIP_MAX_SHARE"
    )
    assert raised.value.exit_status == EXIT_STATUS["training"] == 7


def test_skips_up_to_the_share_in_every_epoch_let_the_run_finish():
    # 1 of 12 per epoch (8 %) is within 0.1; the count starts again each epoch.
    assert len(run_guarded(0.1, {5, 12 + 7})) == 24


def test_every_step_skipped_stops_the_run_even_with_a_share_of_one():
    with pytest.raises(TooManySkippedSteps, match=r"^epoch 1, iteration 4: 4 of the 4 steps run were skipped for a "
                                                  r"non-finite loss, all of the epoch's steps: the training diverges"):
        run_guarded(1.0, {1, 2, 3, 4}, steps_per_epoch=4)


def test_a_resumed_epoch_counts_the_steps_it_runs():
    # Resumed after 5 of 8 batches: 3 steps; 1 skip is 33 %, more than 0.25 but not 0.34.
    with pytest.raises(TooManySkippedSteps, match=r"^epoch 1, iteration 6: 1 of the 1 steps run so far \(3 in the "
                                                  r"epoch\) were skipped .*, 33% of the epoch's steps, more than "
                                                  r"TRAIN.NONFINITE_SKIP_MAX_SHARE = 0.25"):
        run_guarded(0.25, {1}, steps_per_epoch=8, epochs=1, start_iteration=5)
    assert len(run_guarded(0.34, {1}, steps_per_epoch=8, epochs=1, start_iteration=5)) == 3


def test_a_share_outside_zero_to_one_is_a_config_error(demo_data_dir, tmp_path):
    with pytest.raises(ConfigError, match=r"TRAIN.NONFINITE_SKIP_MAX_SHARE must be in \[0, 1\] .*got 1.5"):
        load_config(DEMO_CFG, ["DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(tmp_path),
                               "TRAIN.NONFINITE_SKIP_MAX_SHARE", "1.5"])


def test_a_run_whose_losses_are_all_nan_ends_with_status_7_and_one_line(demo_data_dir, tmp_path, monkeypatch, capsys):
    def nan_loss(model, batch):
        loss, metrics = masked_prediction_objective(model, batch)
        return loss * math.nan, metrics

    monkeypatch.setattr(train_module, "masked_prediction_objective", nan_loss)
    cfg = load_config(DEMO_CFG, [
        "DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(tmp_path), "DATA_LOADER.NUM_WORKERS", "0",
        "TRAIN.BATCH_SIZE", "4", "SOLVER.MAX_EPOCH", "2", "SOLVER.WARMUP_EPOCHS", "0.5", "TRAIN.CHECKPOINT_PERIOD", "1",
        "TRAIN.NONFINITE_LOSS", "skip",
    ])
    start = time.perf_counter()
    status = run_tool(lambda argv: train(cfg), [], lambda: str(tmp_path / "stdout.log"))
    seconds = time.perf_counter() - start
    assert status == 7
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "TooManySkippedSteps: epoch 1, iteration 1: 1 of the 1 steps run so far (4 in the epoch) were skipped for a "
        "non-finite loss, 25% of the epoch's steps, more than TRAIN.NONFINITE_SKIP_MAX_SHARE = 0.1: the training "
        "diverges (the checkpoints written so far are intact). Lower SOLVER.BASE_LR or clip the gradients "
        "(SOLVER.CLIP_GRAD_L2NORM), find the first bad step with TRAIN.NONFINITE_LOSS stop, or raise "
        f"TRAIN.NONFINITE_SKIP_MAX_SHARE (traceback in {tmp_path / 'stdout.log'})"
    ]
    assert checkpoint.epoch_checkpoints(str(tmp_path)) == []  # stopped at the first step: nothing was due
    assert "Traceback" in (tmp_path / "stdout.log").read_text()
    assert seconds < 30, seconds
