"""WANDB.ENABLE: json_stats.log's records, the config and the test reach a W&B run (offline
here, read back from its files), and a resumed run continues the same run id; a missing
wandb package is named by the preflight."""

import glob
import json
import os

import pytest
import wandb

from slowmask.engine import preflight
from slowmask.utils.logging import read_json_stats
from tool_scripts import FT_CFG, QUICK_FINETUNE, load_tool
from wandb_files import wandb_records

run_net = load_tool("run_net")
QUICK = [*QUICK_FINETUNE, "TEST.NUM_ENSEMBLE_VIEWS", "1", "TEST.NUM_SPATIAL_CROPS", "1", "WANDB.ENABLE", "True",
         "WANDB.PROJECT", "slowmask-test", "WANDB.TAGS", "['demo']"]

def logged(output_dir):
    """(run ids, {key: [values in order]} of every history row, {config key: value}) of every offline part."""
    ids, history, config = [], {}, {}
    for path in sorted(glob.glob(os.path.join(output_dir, "wandb", "offline-run-*", "run-*.wandb"))):
        for record in wandb_records(path):
            kind = record.WhichOneof("record_type")
            if kind == "run":  # the config given to wandb.init rides in the run record
                ids.append(record.run.run_id)
                config.update({item.key: json.loads(item.value_json) for item in record.run.config.update})
            elif kind == "history":
                for item in record.history.item:
                    history.setdefault(item.key or "/".join(item.nested_key), []).append(json.loads(item.value_json))
            elif kind == "config":
                config.update({item.key: json.loads(item.value_json) for item in record.config.update})
    return ids, history, config


def test_an_offline_run_holds_the_records_the_config_and_the_test_and_resumes_into_the_same_id(
        demo_data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    opts = ["--cfg", FT_CFG, "DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(tmp_path), *QUICK]
    assert run_net.main(opts + ["SOLVER.MAX_EPOCH", "1", "TEST.ENABLE", "False"]) == 0
    assert run_net.main(opts + ["SOLVER.MAX_EPOCH", "2"]) == 0  # resumes epoch 2, then tests
    wandb.teardown()  # W&B's service writes the offline files behind the runs' finish(): wait for it
    kept = (tmp_path / "wandb_run_id").read_text().strip()
    ids, history, config = logged(str(tmp_path))
    assert ids == [kept] * 2  # the first part; the resumed part and its test
    stats = read_json_stats(str(tmp_path))
    of = lambda kind, key: [record[key] for record in stats if record["_type"] == kind]
    assert history["train_iter/loss"] == pytest.approx(of("train_iter", "loss"), rel=1e-9)
    assert len(history["train_iter/loss"]) == 4  # 2 epochs of 2 iterations, each once
    assert history["train_iter/lr"] == pytest.approx(of("train_iter", "lr"), rel=1e-9)
    assert history["train_iter/grad_norm"] == pytest.approx(of("train_iter", "grad_norm"), rel=1e-9)
    assert history["train_iter/mem_mb"] == of("train_iter", "mem_mb")
    assert history["train_epoch/clips_per_s_total"] == pytest.approx(of("train_epoch", "clips_per_s_total"), rel=1e-9)
    assert history["val_epoch/top1_acc"] == of("val_epoch", "top1_acc") and history["val_epoch/epoch"] == [1, 2]
    assert history["run_start/parameters"] == of("run_start", "parameters")
    results = json.loads((tmp_path / "test_results.json").read_text())
    assert history["test/top1"] == [results["top1"]] and history["test/num_videos"] == [4]
    assert config["SOLVER"]["BASE_LR"] == 0.002 and config["OUTPUT_DIR"] == str(tmp_path)
    assert config["WANDB"]["TAGS"] == ["demo"]


def test_wandb_asked_for_but_missing_fails_the_run_before_building(demo_data_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(preflight, "package_installed", lambda module: module != "wandb")
    status = run_net.main(["--cfg", FT_CFG, "DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(tmp_path),
                           "TRAIN.CHECKPOINT_FILE_PATH", "", "WANDB.ENABLE", "True"])
    assert status == 2
    assert capsys.readouterr().err.splitlines()[0] == (
        "PreflightError: the run cannot start: WANDB.ENABLE True needs the wandb package, which is not installed: "
        "pip install -e '.[wandb]' (or pip install wandb); or set WANDB.ENABLE False "
        f"(traceback in {tmp_path / 'stdout.log'})")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stdout.log"]  # no run id, no W&B files
