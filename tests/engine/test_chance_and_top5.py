"""One definition of chance (100 / K) everywhere, the majority baseline under its own
name, and no top-5 with 5 classes or fewer (it is 100 % by construction)."""

import logging

import pytest
import torch

from slowmask.engine.evaluate import accuracy, chance_top1, majority_baseline
from slowmask.engine.hooks import PeriodicValidation
from slowmask.engine.loop import TrainLoop
from slowmask.utils.logging import read_json_stats
from slowmask.visualization.chart import axis_ticks
from slowmask.visualization.curves import available_metrics

# The list: 7 videos of 3 classes, 3 of them of the first.
LABELS = torch.tensor([0, 0, 0, 1, 1, 2, 2])


def test_chance_is_one_over_k_and_the_majority_baseline_the_largest_class_share():
    assert chance_top1(3) == pytest.approx(100.0 / 3, rel=1e-12)
    assert majority_baseline(LABELS) == pytest.approx(300.0 / 7, rel=1e-12)
    metrics = accuracy(torch.eye(3)[LABELS], LABELS, num_classes=3)
    assert (round(metrics["chance"], 2), round(metrics["majority_baseline"], 2)) == (33.33, 42.86)


@pytest.mark.parametrize("num_classes, has_top5", [(3, False), (5, False), (6, True)])
def test_top5_only_with_more_than_5_classes(num_classes, has_top5):
    labels = torch.arange(num_classes).repeat(2)
    scores = torch.arange(num_classes, 0, -1.0).expand(len(labels), num_classes)  # classes ranked 0, 1, 2 ...
    metrics = accuracy(scores, labels, num_classes)
    assert metrics["top1"] == pytest.approx(100.0 / num_classes, rel=1e-6)
    assert ("top5" in metrics) == has_top5
    if has_top5:  # classes 0-4 are every video's top 5: 10 of the 12 labels
        assert metrics["top5"] == pytest.approx(1000.0 / 12, rel=1e-6)


def validate_once(tmp_path, num_classes):
    labels = torch.arange(num_classes)
    metrics = accuracy(torch.eye(num_classes)[labels], labels, num_classes)
    hook = PeriodicValidation(lambda: metrics, 1, str(tmp_path))
    TrainLoop(lambda batch: {"loss": 1.0}, [{}], [hook], 1).run()
    return [record for record in read_json_stats(str(tmp_path)) if record["_type"] == "val_epoch"]


def test_validation_of_4_classes_logs_and_writes_no_top5_so_plot_draws_none(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="slowmask"):
        (record,) = validate_once(tmp_path, 4)
    assert record == {"_type": "val_epoch", "epoch": "1/1", "top1_acc": 100.0, "num_videos": 4, "best_top1_acc": 100.0}
    assert "validation after epoch 1: top-1 100.00 % (4 videos); best top-1 100.00 %" in caplog.text
    assert available_metrics({"run": [record]}) == ["top1_acc"]


def test_validation_of_10_classes_keeps_top5(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="slowmask"):
        (record,) = validate_once(tmp_path, 10)
    assert (record["top1_acc"], record["top5_acc"]) == (100.0, 100.0)
    assert "validation after epoch 1: top-1 100.00 %, top-5 100.00 % (10 videos)" in caplog.text


def test_a_percentage_axis_stops_at_100():
    assert axis_ticks(100.0, 100.0) == [50.0, 100.0, 150.0]  # the bare ticks of a flat line
    assert axis_ticks(100.0, 100.0, (0.0, 100.0)) == [50.0, 100.0]
    assert axis_ticks(0.0, 0.0, (0.0, 100.0)) == [0.0, 0.5]
    assert axis_ticks(33.0, 100.0, (0.0, 100.0)) == [20.0, 40.0, 60.0, 80.0, 100.0]
