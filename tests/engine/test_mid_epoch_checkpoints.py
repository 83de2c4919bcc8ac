"""Mid-epoch checkpoints: names that sort by (epoch, iteration), keep-last-K pruning,
writing only at optimizer updates, the generator states, and an exact in-process resume."""

import os
import random
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from slowmask.config import ConfigError, load_config
from slowmask import checkpoint
from slowmask.engine import resume
from slowmask.checkpoint import capture_rng_state, restore_rng_state
from slowmask.engine.resume import ResumePoint
from slowmask.engine.hooks import PeriodicCheckpoint
from slowmask.engine.loop import Hook, TrainLoop
from slowmask.engine.step import TrainStep
from slowmask.engine.train import train

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_MaskFeat_PT.yaml")


def tiny_model():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    return model, torch.optim.SGD(model.parameters(), lr=0.1)


def names(out_dir):
    return [os.path.basename(path) for path in checkpoint.epoch_checkpoints(str(out_dir))]


def test_mid_epoch_names_sort_between_the_ends_of_epochs(tmp_path):
    out = str(tmp_path)
    assert os.path.basename(checkpoint.checkpoint_path(out, 2, 3)) == "checkpoint_epoch_00002.iter_000003.pyth"
    assert os.path.basename(checkpoint.checkpoint_path(out, 2)) == "checkpoint_epoch_00002.pyth"
    model, optimizer = tiny_model()
    written = [(2, None), (1, None), (2, 3), (1, 10), (2, 12), (10, 1)]
    for epoch, iteration in written:
        checkpoint.save_checkpoint(checkpoint.checkpoint_path(out, epoch, iteration), model, optimizer, epoch - 1, "",
                                   iteration=iteration)
    expected = [
        "checkpoint_epoch_00001.iter_000010.pyth", "checkpoint_epoch_00001.pyth",
        "checkpoint_epoch_00002.iter_000003.pyth", "checkpoint_epoch_00002.iter_000012.pyth",
        "checkpoint_epoch_00002.pyth", "checkpoint_epoch_00010.iter_000001.pyth",
    ]
    assert names(tmp_path) == expected
    assert sorted(os.listdir(tmp_path / "checkpoints")) == expected  # plain name order agrees
    assert checkpoint.last_checkpoint(out).endswith("checkpoint_epoch_00010.iter_000001.pyth")
    assert checkpoint.position_in_name("checkpoint_best.pyth") is None


def test_truncated_newest_mid_epoch_checkpoint_falls_back_to_the_previous_one(tmp_path, caplog):
    out = str(tmp_path)
    model, optimizer = tiny_model()
    checkpoint.save_checkpoint(checkpoint.checkpoint_path(out, 1, 2), model, optimizer, 0, "", iteration=2)
    newest = checkpoint.checkpoint_path(out, 1, 4)
    checkpoint.save_checkpoint(newest, model, optimizer, 0, "", iteration=4)
    with open(newest, "r+b") as f:
        f.truncate(100)
    with caplog.at_level("WARNING"):
        state = resume.load_newest(out, *tiny_model())
    assert "skipping unreadable checkpoint" in caplog.text and "iter_000004" in caplog.text
    assert ResumePoint.after(state) == ResumePoint(0, 2, state["rng_state"])


def test_resume_point_after_end_of_epoch_mid_epoch_and_pyslowfast_checkpoints():
    assert ResumePoint.after(None) == ResumePoint(0, 0, None)
    assert ResumePoint.after({"epoch": 4}) == ResumePoint(5, 0, None)
    point = ResumePoint.after({"epoch": 4, "iteration": 3, "rng_state": {"x": 1}})
    assert (point.epoch, point.iteration) == (4, 3)
    assert point.batches_done(4) == 3 and point.batches_done(5) == 0


def test_generator_states_round_trip_through_a_weights_only_checkpoint(tmp_path):
    model, optimizer = tiny_model()
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    path = str(tmp_path / "c.pyth")
    checkpoint.save_checkpoint(path, model, optimizer, 0, "", iteration=1)
    draws = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(2), np.random.seed(2), random.seed(2)
    restore_rng_state(checkpoint.read_checkpoint(path)["rng_state"])
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(draws[0], again[0]) and np.array_equal(draws[1], again[1]) and draws[2] == again[2]
    assert set(capture_rng_state()) == {"torch", "numpy", "python"} | ({"cuda"} if torch.cuda.is_available() else set())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_generator_state_round_trips():
    torch.cuda.manual_seed(1)
    state = capture_rng_state()
    draw = torch.rand(3, device="cuda")
    torch.cuda.manual_seed(2)
    restore_rng_state(state)
    assert torch.equal(torch.rand(3, device="cuda"), draw)


def test_a_cuda_state_without_a_gpu_is_left_out_with_a_warning(monkeypatch, caplog):
    state = {**capture_rng_state(), "cuda": torch.zeros(8, dtype=torch.uint8)}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level("WARNING"):
        restore_rng_state(state)
    assert "holds a CUDA generator state but no GPU is visible" in caplog.text


class AccumulatingStep:
    """A step whose optimizer update comes every `every` batches (gradient accumulation)."""

    def __init__(self, every: int) -> None:
        self.every, self.seen = every, 0

    @property
    def pending_gradients(self) -> bool:
        return self.seen % self.every != 0

    def __call__(self, batch):
        self.seen += 1
        return {}


def periodic(out_dir, **kwargs):
    model, optimizer = tiny_model()
    return PeriodicCheckpoint(str(out_dir), 1, model, optimizer, "", **kwargs)


def test_keep_last_prunes_old_checkpoints_and_keeps_the_best(tmp_path):
    best = checkpoint.best_checkpoint_path(str(tmp_path))
    checkpoint.save_checkpoint(best, *tiny_model(), 0, "")
    hook = periodic(tmp_path, iter_period=2, keep_last=3)
    TrainLoop(AccumulatingStep(1), list(range(5)), [hook], max_epoch=2).run()
    assert names(tmp_path) == [
        "checkpoint_epoch_00002.iter_000002.pyth", "checkpoint_epoch_00002.iter_000004.pyth",
        "checkpoint_epoch_00002.pyth",
    ]
    assert os.path.exists(best)
    TrainLoop(AccumulatingStep(1), list(range(5)), [periodic(tmp_path / "all", iter_period=2)], max_epoch=2).run()
    assert len(names(tmp_path / "all")) == 6  # keep_last 0 keeps every one


def test_mid_epoch_checkpoints_wait_for_the_optimizer_update(tmp_path):
    hook = periodic(tmp_path, iter_period=2)
    TrainLoop(AccumulatingStep(3), list(range(8)), [hook], max_epoch=1).run()
    # due after batches 2, 4, 6; updates after batches 3 and 6; batch 8 ends the epoch.
    assert names(tmp_path) == [
        "checkpoint_epoch_00001.iter_000003.pyth", "checkpoint_epoch_00001.iter_000006.pyth",
        "checkpoint_epoch_00001.pyth",
    ]
    state = checkpoint.read_checkpoint(checkpoint.checkpoint_path(str(tmp_path), 1, 3))
    assert state["epoch"] == 0 and state["iteration"] == 3


def test_loop_resumed_part_way_counts_iterations_from_the_resume_point():
    """The loader yields only the remaining batches (see data.set_epoch); the loop numbers
    them from the resume point and the next epoch from 0."""
    seen = []

    class Record(Hook):
        def before_step(self, loop):
            seen.append((loop.epoch, loop.iteration))

    TrainLoop(AccumulatingStep(1), [10, 11], [Record()], max_epoch=2).run(0, 1)
    assert seen == [(0, 1), (0, 2), (1, 0), (1, 1)]


def demo_cfg(data_dir, out_dir, *opts):
    return load_config(DEMO_CFG, [
        "DATA.PATH_TO_DATA_DIR", data_dir, "OUTPUT_DIR", str(out_dir), "DATA_LOADER.NUM_WORKERS", "0",
        "TRAIN.BATCH_SIZE", "2", "SOLVER.MAX_EPOCH", "1", "SOLVER.WARMUP_EPOCHS", "0.5",
        "MVIT.DROPPATH_RATE", "0.2", "TRAIN.CHECKPOINT_PERIOD_ITERS", "3", *opts,
    ])


def test_in_process_resume_from_mid_epoch_gives_the_same_batches_and_weights(demo_data_dir, tmp_path, monkeypatch):
    indices = []
    step = TrainStep.__call__

    def recording(self, batch):
        indices.append(batch["index"].tolist())
        return step(self, batch)

    monkeypatch.setattr(TrainStep, "__call__", recording)
    train(demo_cfg(demo_data_dir, tmp_path / "whole"))
    whole, indices[:] = list(indices), []
    mid_epoch = checkpoint.checkpoint_path(str(tmp_path / "whole"), 1, 3)
    os.makedirs(tmp_path / "resumed" / "checkpoints")
    shutil.copy(mid_epoch, tmp_path / "resumed" / "checkpoints")
    train(demo_cfg(demo_data_dir, tmp_path / "resumed"))
    assert len(whole) == 8 and indices == whole[3:]
    final = [checkpoint.read_checkpoint(checkpoint.checkpoint_path(str(tmp_path / run), 1))["model_state"]
             for run in ("whole", "resumed")]
    for name, value in final[0].items():
        assert torch.equal(final[1][name], value), name


@pytest.mark.parametrize("key", ["TRAIN.CHECKPOINT_PERIOD_ITERS", "TRAIN.CHECKPOINT_KEEP_LAST"])
def test_negative_checkpoint_keys_are_config_errors(key):
    with pytest.raises(ConfigError, match=f"{key} must be >= 0 \\(0: off\\), got -1"):
        load_config(DEMO_CFG, [key, "-1"])
    with pytest.raises(ConfigError, match="TRAIN.CHECKPOINT_PERIOD must be at least 1 epoch, got 0"):
        load_config(DEMO_CFG, ["TRAIN.CHECKPOINT_PERIOD", "0"])
