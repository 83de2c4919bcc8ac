"""A hook's state (Hook.state_dict) is saved in every training checkpoint under
`hooks_state` and handed back on resume, so that a resumed run's hooks go on as in the
uninterrupted run; a checkpoint without it (older, PySlowFast's) resumes with fresh hooks."""

import logging
import math
import os

import pytest
import torch

import slowmask.engine.train as train_module
from slowmask import checkpoint
from slowmask.config import load_config
from slowmask.engine.hooks import NonFiniteSkipLog
from slowmask.engine.loop import Hook, hook_states
from slowmask.engine.resume import ResumePoint
from slowmask.engine.step import masked_prediction_objective
from slowmask.engine.train import train

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_MaskFeat_PT.yaml")
ITERS_PER_EPOCH = 4  # 16 demo videos, batches of 4


def poisoned(bad_calls):
    """The pretraining objective with a NaN loss at the given calls (1-based) of this run."""
    calls = {"n": 0}

    def objective(model, batch):
        calls["n"] += 1
        loss, metrics = masked_prediction_objective(model, batch)
        return (loss * math.nan if calls["n"] in bad_calls else loss), metrics

    return objective


def run(demo_data_dir, out_dir, monkeypatch, epochs, bad_calls):
    monkeypatch.setattr(train_module, "masked_prediction_objective", poisoned(bad_calls))
    train(load_config(DEMO_CFG, [
        "DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(out_dir), "DATA_LOADER.NUM_WORKERS", "0",
        "TRAIN.BATCH_SIZE", "4", "SOLVER.MAX_EPOCH", str(epochs), "SOLVER.WARMUP_EPOCHS", "0.5",
        "TRAIN.CHECKPOINT_PERIOD", "1", "TRAIN.NONFINITE_LOSS", "skip", "TRAIN.NONFINITE_SKIP_MAX_SHARE", "0.25",
    ]))
    return checkpoint.read_checkpoint(checkpoint.last_checkpoint(str(out_dir)))


def test_a_resumed_run_keeps_the_skipped_steps_of_the_uninterrupted_one(demo_data_dir, tmp_path, monkeypatch):
    # Step 2 of each epoch is skipped: in one run of 2 epochs, or in a run of 1 epoch
    # resumed for the second (whose 2nd step is then epoch 2's).
    whole = run(demo_data_dir, tmp_path / "whole", monkeypatch, 2, {2, ITERS_PER_EPOCH + 2})
    run(demo_data_dir, tmp_path / "resumed", monkeypatch, 1, {2})
    resumed = run(demo_data_dir, tmp_path / "resumed", monkeypatch, 2, {2})
    assert whole["epoch"] == resumed["epoch"] == 1
    assert whole["hooks_state"] == resumed["hooks_state"] == {"NonFiniteSkipLog": {"skipped": [[1, 2], [2, 2]]}}
    log = (tmp_path / "resumed" / "stdout.log").read_text()
    assert log.count("skipped 2 step(s) with a non-finite loss: epoch 1 iteration 2, epoch 2 iteration 2") == 1
    assert "skipped the step at epoch 2, iteration 2: the loss is not finite (2 skipped so far)" in log


class Counter(Hook):
    def __init__(self) -> None:
        self.count = 0

    def state_dict(self):
        return {"count": self.count} if self.count else {}

    def load_state_dict(self, state):
        self.count = state["count"]


def test_only_hooks_with_a_state_are_stored_and_each_gets_its_own_back():
    counter, log = Counter(), NonFiniteSkipLog("unused")
    counter.count, log.skipped = 3, [(1, 2)]
    states = hook_states([Hook(), counter, log])
    assert states == {"Counter": {"count": 3}, "NonFiniteSkipLog": {"skipped": [[1, 2]]}}
    fresh_counter, fresh_log = Counter(), NonFiniteSkipLog("unused")
    ResumePoint.after({"epoch": 0, "hooks_state": states}).restore_hooks([fresh_counter, fresh_log])
    assert (fresh_counter.count, fresh_log.skipped) == (3, [(1, 2)])


def test_two_hooks_with_a_state_under_one_key_are_refused():
    first, second = Counter(), Counter()
    first.count = second.count = 1
    with pytest.raises(ValueError, match=r"^two hooks keep a state under the key 'Counter': give one its own state_key$"):
        hook_states([first, second])


def test_a_checkpoint_without_hook_states_resumes_with_fresh_hooks(caplog):
    counter = Counter()
    point = ResumePoint.after({"epoch": 0, "model_state": {"w": torch.zeros(1)}})  # PySlowFast's keys only
    with caplog.at_level(logging.WARNING):
        point.restore_hooks([counter])
    assert (point.hooks_state, counter.count, caplog.records) == (None, 0, [])


def test_a_state_no_hook_takes_is_left_out_with_a_warning_naming_it(caplog):
    point = ResumePoint.after({"epoch": 0, "hooks_state": {"Counter": {"count": 2}}})
    with caplog.at_level(logging.WARNING, logger="slowmask.engine.resume"):
        point.restore_hooks([NonFiniteSkipLog("unused")])
        point.restore_hooks([], warn_unclaimed=False)  # a rank without the main process's hooks
    assert [record.getMessage() for record in caplog.records] == [
        "the checkpoint holds the state of hook(s) this run does not have, not restored: Counter"
    ]
