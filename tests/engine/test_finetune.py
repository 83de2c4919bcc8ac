"""Fine-tuning from a pretraining checkpoint, validation and multi-view testing, end to
end through tools/run_net.py on the demo videos (CPU)."""

import json
import os

import pytest
import torch

from slowmask.data.datasets.video_list import read_video_list
from slowmask.utils.logging import read_json_stats
from tool_scripts import load_tool

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
run_net = load_tool("run_net")

PT_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_MaskFeat_PT.yaml")
FT_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_FT.yaml")
# Two epochs of 32x32 clips (4x8x8 tokens, a 4x4x4 prediction grid) keep the runs short.
QUICK = ["DATA_LOADER.NUM_WORKERS", "0", "SOLVER.MAX_EPOCH", "2", "SOLVER.WARMUP_EPOCHS", "1.0", "LOG_PERIOD", "1",
         "DATA.TRAIN_CROP_SIZE", "32", "DATA.TEST_CROP_SIZE", "32", "DATA.DECODING_SHORT_SIZE", "40"]


def test_pretrain_then_fine_tune_validate_and_test(demo_data_dir, tmp_path):
    pretrain, finetune = tmp_path / "pt", tmp_path / "ft"
    assert run_net.main(["--cfg", PT_CFG, "DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(pretrain), *QUICK]) == 0
    assert run_net.main([
        "--cfg", FT_CFG, "DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(finetune), *QUICK,
        "TRAIN.CHECKPOINT_FILE_PATH", str(pretrain / "checkpoints" / "checkpoint_epoch_00002.pyth"),
        "TRAIN.EVAL_PERIOD", "1", "TEST.NUM_ENSEMBLE_VIEWS", "1", "TEST.NUM_SPATIAL_CROPS", "2",
        "TEST.SAVE_RESULTS_PATH", "scores.pyth",
    ]) == 0
    log = (finetune / "stdout.log").read_text()
    assert "skipped: mask_token (pretraining only)" in log
    assert "new (initialized): norm.weight, norm.bias, head.projection.weight, head.projection.bias" in log
    validations = [s for s in read_json_stats(str(finetune)) if s["_type"] == "val_epoch"]
    assert [s["epoch"] for s in validations] == ["1/2", "2/2"]
    assert sorted(os.listdir(finetune / "checkpoints")) == ["checkpoint_best.pyth", "checkpoint_epoch_00002.pyth"]
    results = json.loads((finetune / "test_results.json").read_text())
    assert results["num_videos"] == 4 and results["views_per_video"] == 2 and results["chance"] == 25.0
    saved = torch.load(finetune / "scores.pyth", weights_only=True)
    scores, labels = saved["scores"], saved["labels"]
    assert scores.shape == (4, 4) and len(saved["paths"]) == 4
    listed = {os.path.basename(path): label for path, label in read_video_list(os.path.join(demo_data_dir, "test.csv"))}
    assert labels.tolist() == [listed[os.path.basename(path)] for path in saved["paths"]]
    correct = (scores.argmax(dim=1) == labels).float()
    assert results["top1"] == pytest.approx(100.0 * correct.mean().item(), abs=1e-9)
    assert "top5" not in results  # 4 classes: top-5 would be 100 % by construction
    assert results["per_class_top1"] == pytest.approx([100.0 * correct[labels == k].mean().item() for k in range(4)])
    majority = 100.0 * torch.bincount(labels).max().item() / len(labels)
    assert results["chance"] == 25.0 and results["majority_baseline"] == majority
    assert "test of " in log and f"views (chance 25.00 %, majority baseline {majority:.2f} %)" in log


def test_a_resumed_fine_tuning_run_ignores_the_init_checkpoint(demo_data_dir, tmp_path):
    opts = ["--cfg", FT_CFG, "DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(tmp_path), *QUICK,
            "TEST.ENABLE", "False", "TRAIN.EVAL_PERIOD", "5", "MVIT.DEPTH", "2"]
    first = ["TRAIN.CHECKPOINT_FILE_PATH", "", "SOLVER.MAX_EPOCH", "1", "SOLVER.WARMUP_EPOCHS", "0.5"]
    assert run_net.main(opts + first) == 0
    missing = str(tmp_path / "missing.pyth")
    # AUTO_RESUME wins; the warmup differs from the first run's, which resuming must be told to accept.
    assert run_net.main(opts + ["TRAIN.CHECKPOINT_FILE_PATH", missing, "TRAIN.AUTO_RESUME_ALLOW_CHANGES", "True"]) == 0
    epochs = [s["epoch"] for s in read_json_stats(str(tmp_path)) if s["_type"] == "train_epoch"]
    assert epochs == ["1/1", "2/2"]
