"""The end-of-run summary: logged and written to OUTPUT_DIR/summary.json by every training
run, read back from what the run wrote (a resumed run's earlier part included)."""

import json

import pytest

from slowmask.config import get_cfg, load_config
from slowmask.engine.summary import run_summary, summary_block
from slowmask.methods import build_model
from slowmask.utils.logging import read_json_stats, write_json_stats
from tool_scripts import FT_CFG, QUICK_FINETUNE, load_tool

run_net = load_tool("run_net")
QUICK = [*QUICK_FINETUNE, "MODEL.EMA.ENABLE", "True", "TEST.NUM_ENSEMBLE_VIEWS", "1", "TEST.NUM_SPATIAL_CROPS", "1"]


def test_a_resumed_fine_tune_summarizes_the_whole_run_and_its_test(demo_data_dir, tmp_path, caplog):
    opts = ["--cfg", FT_CFG, "DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(tmp_path), *QUICK]
    assert run_net.main(opts + ["SOLVER.MAX_EPOCH", "1", "TEST.ENABLE", "False"]) == 0
    first = json.loads((tmp_path / "summary.json").read_text())
    assert first["epochs"] == {"done": 1, "max": 1, "iterations_per_epoch": 2} and "test" not in first
    assert run_net.main(opts + ["SOLVER.MAX_EPOCH", "2"]) == 0  # resumes: epoch 2, then the test
    summary = json.loads((tmp_path / "summary.json").read_text())
    stats = read_json_stats(str(tmp_path))
    epochs = [s for s in stats if s["_type"] == "train_epoch"]
    validations = [s for s in stats if s["_type"] == "val_epoch"]
    results = json.loads((tmp_path / "test_results.json").read_text())
    model = build_model(load_config(FT_CFG, QUICK))
    assert summary["method"] == "MViT" and summary["model"] == {
        "model_name": "MViT", "parameters": sum(p.numel() for p in model.parameters()),
        "trainable_parameters": sum(p.numel() for p in model.parameters())}
    assert summary["data"] == {"dataset": "kinetics", "data_path": demo_data_dir, "train_items": 16, "clip": "8x32x32"}
    assert summary["epochs"] == {"done": 2, "max": 2, "iterations_per_epoch": 2}
    assert summary["loss_first"] == epochs[0]["loss"] and summary["loss_last"] == epochs[1]["loss"]
    assert summary["train_time_s"] == pytest.approx(epochs[0]["epoch_time"] + epochs[1]["epoch_time"], rel=1e-9)
    assert summary["clips_per_s"] == pytest.approx(32 / summary["train_time_s"], rel=1e-6)
    assert summary["peak_memory_mb"] == max(s["mem_mb"] for s in stats if s["_type"] == "train_iter")
    best = max(validations, key=lambda s: s["top1_acc"])
    assert (summary["best_val_top1"], summary["best_val_epoch"]) == (best["top1_acc"], int(best["epoch"][0]))
    best_ema = max(validations, key=lambda s: s["ema_top1_acc"])
    assert (summary["best_ema_val_top1"], summary["best_ema_val_epoch"]) == (best_ema["ema_top1_acc"],
                                                                            int(best_ema["epoch"][0]))
    assert summary["test"] == {key: results[key] for key in
                               ("top1", "num_videos", "views_per_video", "chance", "majority_baseline", "checkpoint")}
    assert summary["test"]["checkpoint"] == str(tmp_path / "checkpoints" / "checkpoint_epoch_00002.pyth")
    assert 0 < summary["wall_time_s"] < 300
    assert summary["files"] == {
        "log": str(tmp_path / "stdout.log"), "json_stats": str(tmp_path / "json_stats.log"),
        "checkpoints": str(tmp_path / "checkpoints"), "curves": f"not drawn yet: python tools/plot.py {tmp_path}"}
    assert summary_block(summary) in (tmp_path / "stdout.log").read_text()


def test_a_pretraining_summary_names_the_last_probe_and_the_pictures_to_draw(tmp_path):
    cfg = get_cfg()
    cfg.OUTPUT_DIR, cfg.MASK.ENABLE, cfg.SOLVER.MAX_EPOCH = str(tmp_path), True, 3
    (tmp_path / "curves.png").write_bytes(b"")
    records = [
        {"_type": "run_start", "method": "MaskFeat", "model_name": "MaskMViT", "parameters": 10, "trainable_parameters": 8,
         "dataset": "video_folder", "data_path": "videos", "train_items": 512, "clip": "8x32x32"},
        {"_type": "train_iter", "epoch": "1/3", "iter": "4/4", "loss": 2.0, "mem_mb": 700},
        {"_type": "train_epoch", "epoch": "1/3", "loss": 2.0, "epoch_time": 4.0, "clips": 32, "clips_per_s": 8.0,
         "clips_per_s_total": 16.0},
        {"_type": "probe_epoch", "epoch": "1/3", "knn_top1_acc": 40.0, "linear_top1_acc": 50.0},
        {"_type": "train_iter", "epoch": "3/3", "iter": "4/4", "loss": 1.0, "mem_mb": 650},
        {"_type": "train_epoch", "epoch": "3/3", "loss": 1.5, "epoch_time": 2.0, "clips": 32, "clips_per_s": 16.0,
         "clips_per_s_total": 32.0},
        {"_type": "probe_epoch", "epoch": "3/3", "knn_top1_acc": 60.0, "linear_top1_acc": 70.0},
    ]
    for record in records:
        write_json_stats(str(tmp_path), record)
    summary = run_summary(cfg, 9.5, tested=False)
    assert summary["method"] == "MaskFeat" and summary["epochs"] == {"done": 3, "max": 3, "iterations_per_epoch": 4}
    assert summary["clips_per_s"] == pytest.approx(128 / 6.0) and summary["peak_memory_mb"] == 700
    assert (summary["loss_first"], summary["loss_last"]) == (2.0, 1.5)
    assert summary["best_val_top1"] is None and summary["probes"] == {"knn": 60.0, "linear": 70.0}
    assert summary["files"]["curves"] == str(tmp_path / "curves.png")
    assert summary["files"]["visualizations"] == (
        f"not drawn yet: python tools/visualize.py --cfg {tmp_path}/config.yaml")
    block = summary_block(summary)
    assert "method MaskFeat (MODEL.MODEL_NAME MaskMViT), 10 parameters" in block
    assert "last probe: knn 60.00 %, linear 70.00 %" in block and "best val" not in block
