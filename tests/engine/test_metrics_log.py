"""MetricsLog's figures: the log line's window is LOG_PERIOD, a resumed epoch is marked
partial, and each epoch record gives its clips per second."""

import logging
import os
import shutil
import statistics
import time

import pytest
import torch

from slowmask.config import load_config
from slowmask import checkpoint
from slowmask.engine.hooks import MetricsLog, batch_clips
from slowmask.engine.loop import TrainLoop
from slowmask.engine.train import train
from slowmask.utils.logging import read_json_stats

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_MaskFeat_PT.yaml")


def losses_step(losses, seconds=0.0):
    """A step returning the given losses in turn."""
    values = iter(losses)

    def step(batch):
        time.sleep(seconds)
        return {"loss": next(values), "lr": 0.1}

    return step


def records(out_dir, kind):
    return [record for record in read_json_stats(str(out_dir)) if record["_type"] == kind]


def test_with_log_period_1_each_line_gives_the_steps_own_loss(tmp_path):
    losses = [3.0, 1.0, 2.0, 5.0]
    TrainLoop(losses_step(losses), [{}] * 4, [MetricsLog(str(tmp_path), period=1)], 1).run()
    assert [line["loss"] for line in records(tmp_path, "train_iter")] == losses
    assert records(tmp_path, "train_epoch")[0]["loss"] == pytest.approx(11.0 / 4, rel=1e-12)


def test_a_line_gives_the_median_of_the_last_log_period_steps(tmp_path):
    losses = [1.0, 9.0, 2.0, 4.0, 8.0, 6.0, 7.0]
    TrainLoop(losses_step(losses), [{}] * 7, [MetricsLog(str(tmp_path), period=3)], 1).run()
    lines = records(tmp_path, "train_iter")
    # Lines at iterations 3 and 6, and at the epoch's last (7): medians of steps 1-3, 4-6 and 5-7.
    assert [(line["iter"], line["loss"]) for line in lines] == [("3/7", 2.0), ("6/7", 6.0), ("7/7", 7.0)]
    mean = records(tmp_path, "train_epoch")[0]["loss"]
    assert mean == pytest.approx(statistics.mean(losses), abs=1e-6)  # json_stats keeps 6 decimals


class ResumedLoader:
    """8 batches an epoch; the first epoch resumes after `done` of them."""

    def __init__(self, done: int) -> None:
        self.done, self.epochs = done, 0

    def __len__(self) -> int:
        return 8

    def __iter__(self):
        skip = self.done if self.epochs == 0 else 0
        self.epochs += 1
        return iter([{}] * (8 - skip))


def test_a_resumed_epoch_is_marked_partial_and_the_summary_counts_whole_epochs(tmp_path, caplog):
    losses = [6.0, 3.0, 3.0] + [1.0] * 8
    with caplog.at_level(logging.INFO, logger="slowmask"):
        TrainLoop(losses_step(losses), ResumedLoader(5), [MetricsLog(str(tmp_path), period=4)], 2).run(0, 5)
    first, second = records(tmp_path, "train_epoch")
    assert (first["epoch"], first["partial"], first["resumed_after_iter"], first["steps"]) == ("1/2", True, 5, 3)
    assert first["loss"] == 4.0  # the mean of the 3 steps run since the resume
    assert (second["partial"], second["steps"], "resumed_after_iter" in second) == (False, 8, False)
    assert "epoch: 1/2 (resumed after iteration 5 of 8: 3 steps) loss: 4 " in caplog.text
    assert "epoch: 2/2 loss: 1 " in caplog.text
    assert ("finished 1 whole epoch(s) and the last 3 of the 8 steps of epoch 1 (resumed after iteration 5) in "
            in caplog.text)
    assert "mean loss of the first epoch run 4 (partial), of the last 1, lowest 1 (epoch 2)" in caplog.text


def test_the_epoch_record_gives_clips_per_second_of_the_process_and_the_job(tmp_path, caplog):
    batches = [{"clip": torch.zeros(4, 3, 2, 8, 8), "meta": [{}] * 4}] * 3
    with caplog.at_level(logging.INFO, logger="slowmask"):
        TrainLoop(losses_step([1.0] * 3, seconds=0.02), batches, [MetricsLog(str(tmp_path), 1, world_size=2)], 1).run()
    epoch = records(tmp_path, "train_epoch")[0]
    assert epoch["clips"] == 12
    assert epoch["epoch_time"] == pytest.approx(3 * 0.02, rel=0.5)  # three steps that sleep 20 ms
    rounding = 1e-6 / epoch["epoch_time"]  # json_stats keeps 6 decimals of the seconds
    assert epoch["clips_per_s"] == pytest.approx(12 / epoch["epoch_time"], rel=rounding)
    assert epoch["clips_per_s_total"] == pytest.approx(2 * 12 / epoch["epoch_time"], rel=rounding)
    assert f"clips: 12 clips_per_s: {epoch['clips_per_s']:.5g} clips_per_s_total: " in caplog.text


def test_repeated_augmentation_clips_count_each():
    # 2 items of 3 clips each (AUG.NUM_SAMPLE 3): 6 rows trained on.
    metas = [{"path": "a"}] * 3 + [{"path": "b"}] * 3
    assert batch_clips({"clip": torch.zeros(6, 3, 2, 8, 8), "meta": metas}) == 6
    assert batch_clips({"meta": metas}) == 2  # no clip tensor: the items


def test_a_run_resumed_from_a_mid_epoch_checkpoint_logs_its_first_epoch_as_partial(demo_data_dir, tmp_path):
    def run(out_dir):
        train(load_config(DEMO_CFG, [
            "DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(out_dir), "DATA_LOADER.NUM_WORKERS", "0",
            "TRAIN.BATCH_SIZE", "2", "SOLVER.MAX_EPOCH", "2", "SOLVER.WARMUP_EPOCHS", "0.5",
            "TRAIN.CHECKPOINT_PERIOD_ITERS", "3", "LOG_PERIOD", "4",
        ]))

    run(tmp_path / "whole")  # 16 videos in batches of 2: 8 iterations an epoch
    os.makedirs(tmp_path / "resumed" / "checkpoints")
    shutil.copy(checkpoint.checkpoint_path(str(tmp_path / "whole"), 1, 3), tmp_path / "resumed" / "checkpoints")
    run(tmp_path / "resumed")
    first, second = records(tmp_path / "resumed", "train_epoch")
    assert (first["epoch"], first["partial"], first["resumed_after_iter"], first["steps"], first["clips"]) == (
        "1/2", True, 3, 5, 10)
    assert (second["epoch"], second["partial"], second["steps"], second["clips"]) == ("2/2", False, 8, 16)
    log = (tmp_path / "resumed" / "stdout.log").read_text()
    assert "epoch: 1/2 (resumed after iteration 3 of 8: 5 steps) loss: " in log
    assert "finished 1 whole epoch(s) and the last 5 of the 8 steps of epoch 1 (resumed after iteration 3) in " in log
