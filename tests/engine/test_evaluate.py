"""Multi-view testing: views averaged per video, accuracies, results files, bad inputs."""

import json
import os

import pytest
import torch

from slowmask.config import load_config
from slowmask.data import build_dataset, build_loader
from slowmask import checkpoint
from slowmask.engine.evaluate import accuracy, evaluate, run_test
from slowmask.methods import build_model

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FT_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_FT.yaml")


def tiny_cfg(data_dir, out_dir, *opts):
    return load_config(FT_CFG, [
        "DATA.PATH_TO_DATA_DIR", data_dir, "OUTPUT_DIR", str(out_dir), "DATA_LOADER.NUM_WORKERS", "0",
        "MVIT.DEPTH", "2", "DATA.TEST_CROP_SIZE", "32", "DATA.TRAIN_CROP_SIZE", "32", "DATA.DECODING_SHORT_SIZE", "40",
        "TEST.NUM_ENSEMBLE_VIEWS", "2", "TEST.NUM_SPATIAL_CROPS", "3", "TEST.BATCH_SIZE", "5", *opts,
    ])


def test_multi_view_scores_are_the_mean_of_the_single_views(demo_data_dir, tmp_path):
    cfg = tiny_cfg(demo_data_dir, tmp_path)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    dataset = build_dataset(cfg, "test")
    metrics = evaluate(model, build_loader(cfg, "test", dataset), torch.device("cpu"), 4)
    videos = metrics["videos"]
    assert metrics["views_per_video"] == 6 and metrics["num_videos"] == len(dataset.videos) == 4
    with torch.no_grad():
        for row, video in enumerate(videos.video.tolist()[:2]):
            views = [dataset[video * 6 + view] for view in range(6)]
            assert {(v["meta"]["temporal_index"], v["meta"]["spatial_index"]) for v in views} == {
                (t, s) for t in range(2) for s in range(3)
            }
            by_hand = torch.stack([model(v["clip"][None]).softmax(1)[0] for v in views]).mean(0)
            assert torch.allclose(videos.scores[row], by_hand, atol=1e-6)
            assert videos.labels[row] == dataset.videos[video][1]


def test_accuracy_top1_and_per_class_without_top5_for_4_classes():
    scores = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.5, 0.3], [0.6, 0.3, 0.1], [0.1, 0.2, 0.7]])
    labels = torch.tensor([0, 2, 1, 2])
    metrics = accuracy(scores, labels, num_classes=4)
    assert metrics["top1"] == 50.0 and "top5" not in metrics  # 100 % by construction with K <= 5
    assert metrics["per_class_top1"] == [100.0, 0.0, 50.0, None]
    assert metrics["chance"] == 25.0 and metrics["majority_baseline"] == 50.0


def test_run_test_writes_results_and_per_video_scores(demo_data_dir, tmp_path):
    cfg = tiny_cfg(demo_data_dir, tmp_path, "TEST.SAVE_RESULTS_PATH", "scores.pyth")
    checkpoint.save_checkpoint(checkpoint.checkpoint_path(str(tmp_path), 1), build_model(cfg), None, 0, cfg.dump())
    metrics = run_test(cfg)
    saved = json.loads((tmp_path / "test_results.json").read_text())
    assert saved["top1"] == metrics["top1"] and len(saved["per_class_top1"]) == 4
    scores = torch.load(tmp_path / "scores.pyth", weights_only=True)
    assert scores["scores"].shape == (4, 4) and len(scores["paths"]) == 4
    assert torch.allclose(scores["scores"].sum(1), torch.ones(4))


def test_label_beyond_num_classes_and_empty_test_split(demo_data_dir, tmp_path):
    cfg = tiny_cfg(demo_data_dir, tmp_path, "MODEL.NUM_CLASSES", "3")
    loader = build_loader(cfg, "test")
    with pytest.raises(ValueError, match=r"label \(3\) lies outside \[0, MODEL.NUM_CLASSES = 3\)"):
        evaluate(build_model(cfg), loader, torch.device("cpu"), 3)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "test.csv").write_text("\n")
    cfg = tiny_cfg(str(empty), tmp_path, "TEST.CHECKPOINT_FILE_PATH", "unused.pyth")
    with pytest.raises(ValueError, match="video list .*test.csv is empty"):
        build_loader(cfg, "test")


def test_nothing_to_test_is_a_clear_error(demo_data_dir, tmp_path):
    with pytest.raises(checkpoint.CheckpointError, match="nothing to test: TEST.CHECKPOINT_FILE_PATH is empty"):
        run_test(tiny_cfg(demo_data_dir, tmp_path))
