"""Line charts and training curves from json_stats.log records."""

import numpy as np
import pytest

from slowmask.utils.logging import write_json_stats
from slowmask.visualization.chart import Line, line_chart, nice_ticks
from slowmask.visualization.curves import available_metrics, epoch_position, metric_series, plot_runs


def test_nice_ticks_cover_the_range_with_round_steps():
    ticks = nice_ticks(0.013, 0.049)
    assert ticks[0] <= 0.013 and ticks[-1] >= 0.049
    steps = np.diff(ticks)
    assert np.allclose(steps, steps[0]) and round(steps[0] / 10 ** np.floor(np.log10(steps[0]))) in (1, 2, 5)


def test_epoch_positions_of_iteration_and_epoch_records():
    assert epoch_position({"epoch": "3/20", "iter": "2/4"}) == 2.5
    assert epoch_position({"epoch": "3/20"}) == 3.0
    assert epoch_position({"_type": "other"}) is None


def test_a_chart_draws_each_line_in_its_colour():
    chart = np.asarray(line_chart([Line("a", [0, 1, 2], [1, 2, 3]), Line("b", [0, 2], [3, 1])], "loss", "epoch"))
    assert (chart == (31, 119, 180)).all(axis=-1).sum() > 50
    assert (chart == (255, 127, 14)).all(axis=-1).sum() > 50


def test_a_chart_without_points_says_so():
    with pytest.raises(ValueError, match="no finite points"):
        line_chart([Line("a", [], [])], "loss", "epoch")


def test_runs_are_overlaid_and_missing_logs_are_named(tmp_path):
    for run, scale in (("a", 1.0), ("b", 2.0)):
        (tmp_path / run).mkdir()
        for epoch in (1, 2, 3):
            write_json_stats(str(tmp_path / run), {"_type": "train_iter", "epoch": f"{epoch}/3", "iter": "4/4",
                                                   "loss": scale / epoch, "lr": 0.1 * epoch})
            write_json_stats(str(tmp_path / run), {"_type": "train_epoch", "epoch": f"{epoch}/3", "loss": scale / epoch})
        write_json_stats(str(tmp_path / run), {"_type": "val_epoch", "epoch": "3/3", "top1_err": 40.0,
                                               "min_top1_err": 40.0})
    records = [{"_type": "train_epoch", "epoch": "1/2", "loss": 1.0}, {"_type": "train_epoch", "epoch": "2/2", "loss": 0.5}]
    assert metric_series(records, "loss")["train_epoch"].ys == [1.0, 0.5]
    picture = plot_runs([str(tmp_path / "a"), str(tmp_path / "b")])
    assert picture.height == 3 * 360  # loss, lr, top1_err
    assert available_metrics({"a": records}) == ["loss"]
    with pytest.raises(FileNotFoundError, match="no json_stats.log"):
        plot_runs([str(tmp_path / "a"), str(tmp_path / "nothing")])
    with pytest.raises(ValueError, match="logs the metric 'top5_acc'"):
        plot_runs([str(tmp_path / "a")], ["top5_acc"])
