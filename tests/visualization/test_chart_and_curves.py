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


def test_each_run_keeps_its_colour_in_every_chart_and_validation_is_dashed(tmp_path):
    palette = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40)]
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        for epoch in (1, 2, 3):
            for kind, acc in (("train_epoch", 20.0 * epoch), ("val_epoch", 15.0 * epoch)):
                write_json_stats(str(tmp_path / run), {"_type": kind, "epoch": f"{epoch}/3", "top1_acc": acc,
                                                       "loss": 1.0 / epoch})
    picture = np.asarray(plot_runs([str(tmp_path / "a"), str(tmp_path / "b")], ["loss", "top1_acc"]))
    for chart in (picture[:360], picture[360:]):  # loss: train and val of each run; top1_acc: the same
        counts = [(chart == colour).all(axis=-1).sum() for colour in palette]
        assert counts[0] > 50 and counts[1] > 50 and counts[2] == counts[3] == 0
    solid = np.asarray(line_chart([Line("train", [0, 1], [0, 1])], "m", "epoch"))
    dashed = np.asarray(line_chart([Line("val", [0, 1], [0, 1], dashed=True)], "m", "epoch"))
    drawn_solid, drawn_dashed = ((c == palette[0]).all(axis=-1).sum() for c in (solid, dashed))
    assert 0.4 < drawn_dashed / drawn_solid < 0.85  # half the length, each dash with its round ends
