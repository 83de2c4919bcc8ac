"""The progress bar (terminal only), TensorBoard scalars, and the run summary."""

import importlib.util
import io
import logging
import re
import time

import pytest

from slowmask.config import get_cfg
from slowmask import checkpoint
from slowmask.engine.hooks import MetricsLog, ProgressBar, TensorBoardScalars, summary_writer
from slowmask.engine.loop import TrainLoop
from slowmask.utils.logging import read_json_stats


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_loop(hooks, batches=None, epochs=2):
    batches = batches or [{"meta": [{"skipped": []}]}] * 3
    TrainLoop(lambda batch: {"loss": 0.5, "lr": 0.01}, batches, hooks, epochs).run()


def test_a_terminal_gets_a_bar_with_epoch_iteration_loss_and_lr(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # the bar is as wide as the terminal
    stream = Terminal()
    run_loop([ProgressBar(stream)])
    shown = stream.getvalue()
    assert "epoch 2/2" in shown and "iter=3/3" in shown and "loss=0.5" in shown and "lr=0.01" in shown
    assert "6/6" in shown and "it/s" in shown


def test_a_run_resumed_part_way_through_an_epoch_counts_only_the_batches_left(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    stream = Terminal()
    bar = ProgressBar(stream)
    step = lambda batch: {"loss": 0.5, "lr": 0.01}  # noqa: E731
    # Epoch 1 resumed after 2 of its 3 batches: the loader yields the one left, then 3.
    loader = ResumedLoader(first=[{}], rest=[{}] * 3)
    TrainLoop(step, loader, [bar], 2).run(0, start_iteration=2)
    assert "4/4" in stream.getvalue() and "/5" not in stream.getvalue()


class ResumedLoader:
    """A loader whose first epoch starts part-way (as set_epoch(loader, 0, start_batch) makes it)."""

    def __init__(self, first, rest):
        self.epochs = [first, rest]

    def __len__(self):
        return len(self.epochs[1])

    def __iter__(self):
        return iter(self.epochs.pop(0))


def test_no_bar_when_not_on_a_terminal():
    stream = io.StringIO()
    run_loop([ProgressBar(stream)])
    assert stream.getvalue() == ""


def test_the_summary_names_checkpoints_best_epoch_and_skipped_videos(tmp_path, caplog):
    path = checkpoint.checkpoint_path(str(tmp_path), 2)
    tmp_path.joinpath("checkpoints").mkdir()
    tmp_path.joinpath("checkpoints", "checkpoint_epoch_00002.pyth").write_bytes(b"")
    batches = [{"meta": [{"skipped": ["bad.mp4"]}, {"skipped": []}]}, {"meta": [{"skipped": ["bad.mp4", "worse.mp4"]}]}]
    with caplog.at_level(logging.INFO, logger="slowmask"):
        run_loop([MetricsLog(str(tmp_path), period=1)], batches)
    text = caplog.text
    assert "finished 2 whole epoch(s) in" in text and "lowest 0.5 (epoch 1)" in text
    assert f"checkpoints: {path}" in text
    assert "skipped 2 unreadable video(s): bad.mp4, worse.mp4" in text


class RecordingWriter:
    def __init__(self):
        self.scalars, self.closed = [], False

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))

    def flush(self):
        pass

    def close(self):
        self.closed = True


def test_tensorboard_scalars_per_step_and_per_epoch():
    writer = RecordingWriter()
    run_loop([TensorBoardScalars(writer)])
    assert ("train/loss", 0.5, 6) in writer.scalars and ("train_epoch/loss", 0.5, 2) in writer.scalars
    assert writer.closed


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is not None, reason="tensorboard is installed")
def test_tensorboard_enabled_without_the_package_says_what_to_install(tmp_path):
    with pytest.raises(ImportError, match="pip install tensorboard"):
        summary_writer(str(tmp_path))


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None, reason="tensorboard is not installed")
def test_tensorboard_writer_writes_event_files(tmp_path):
    writer = summary_writer(str(tmp_path))
    writer.add_scalar("train/loss", 1.0, 1)
    writer.close()
    assert any(name.startswith("events.out.tfevents") for name in (p.name for p in tmp_path.iterdir()))


def test_monitoring_hooks_from_the_config(tmp_path, hooks_of):
    def monitoring_hooks(cfg):
        return [hook for hook in hooks_of(cfg) if isinstance(hook, (ProgressBar, TensorBoardScalars))]

    cfg = get_cfg()
    cfg.OUTPUT_DIR = str(tmp_path)
    cfg.MASK.ENABLE = True  # pretraining: no validation split to build
    assert [type(hook) for hook in monitoring_hooks(cfg)] == [ProgressBar]
    cfg.TENSORBOARD.ENABLE = True
    if importlib.util.find_spec("tensorboard") is None:
        with pytest.raises(ImportError, match="TENSORBOARD.ENABLE is True but the tensorboard package is not installed"):
            monitoring_hooks(cfg)
    else:
        assert [type(hook) for hook in monitoring_hooks(cfg)] == [ProgressBar, TensorBoardScalars]
        assert (tmp_path / "runs").is_dir()


class SlowLoader:
    """Batches that take `seconds` each to arrive."""

    def __init__(self, seconds: float, batches: int = 3) -> None:
        self.seconds, self.batches = seconds, batches

    def __len__(self) -> int:
        return self.batches

    def __iter__(self):
        for _ in range(self.batches):
            time.sleep(self.seconds)
            yield {"meta": [{"skipped": []}]}


def slow_step(seconds: float):
    def step(batch):
        time.sleep(seconds)
        return {"loss": 0.5, "lr": 0.01}

    return step


@pytest.mark.parametrize(
    "data_s, step_s, verdict",
    [
        (0.03, 0.0, r"data loading took (9\d|100)% of the iteration time .*: the run is input-bound; raise DATA_LOADER.NUM_WORKERS"),
        (0.0, 0.03, r"compute took (9\d|100)% of the iteration time .*, data loading \d%: the run is compute-bound"),
    ],
)
def test_the_summary_says_whether_data_or_compute_dominated(tmp_path, caplog, data_s, step_s, verdict):
    with caplog.at_level(logging.INFO, logger="slowmask"):
        TrainLoop(slow_step(step_s), SlowLoader(data_s), [MetricsLog(str(tmp_path), period=1)], 1).run()
    assert re.search(verdict, caplog.text), caplog.text
    epoch = [s for s in read_json_stats(str(tmp_path)) if s["_type"] == "train_epoch"][0]
    assert epoch["data_time_total"] == pytest.approx(3 * data_s, abs=0.02)
    assert epoch["step_time_total"] == pytest.approx(3 * step_s, abs=0.02)


def test_each_epoch_record_counts_its_own_skips(tmp_path, caplog):
    batches = [{"meta": [{"skipped": ["bad.mp4"]}, {"skipped": ["bad.mp4", "worse.mp4"]}, {"skipped": []}]}]
    with caplog.at_level(logging.INFO, logger="slowmask"):
        run_loop([MetricsLog(str(tmp_path), period=1)], batches, epochs=2)
    epochs = [s for s in read_json_stats(str(tmp_path)) if s["_type"] == "train_epoch"]
    assert [(e["skipped"], e["replaced_items"], e["skipped_files"]) for e in epochs] == [
        (2, 2, ["bad.mp4", "worse.mp4"])
    ] * 2
    assert "epoch: 2/2" in caplog.text and "skipped: 2 replaced_items: 2 (bad.mp4, worse.mp4)" in caplog.text
