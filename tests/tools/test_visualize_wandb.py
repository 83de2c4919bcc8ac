"""tools/visualize.py with WANDB.ENABLE: its pictures join the run's W&B run (offline here,
read back from the run's files)."""

import glob
import json
import os

import wandb
from tool_scripts import DEMO_CFG, load_tool
from wandb_files import wandb_records


def test_the_pictures_are_logged_to_the_run_kept_in_output_dir(tiny_run, demo_data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    (tmp_path / "wandb_run_id").write_text("visualrun01\n")  # as the training run left it
    argv = ["--cfg", DEMO_CFG, "--num-clips", "2", "--scale", "1", "DATA.PATH_TO_DATA_DIR", demo_data_dir,
            "OUTPUT_DIR", str(tmp_path), "DATA_LOADER.NUM_WORKERS", "0", "WANDB.ENABLE", "True",
            "TRAIN.CHECKPOINT_FILE_PATH", os.path.join(tiny_run, "checkpoints", "checkpoint_epoch_00001.pyth"),
            "--formats", "gif"]
    assert load_tool("visualize").main(argv) == 0
    wandb.teardown()  # W&B's service writes the offline files behind finish(): wait for it
    [path] = glob.glob(str(tmp_path / "wandb" / "offline-run-*" / "run-visualrun01.wandb"))
    logged = {item.nested_key[1]: json.loads(item.value_json) for record in wandb_records(path)
              if record.WhichOneof("record_type") == "history"
              for item in record.history.item if item.nested_key[:1] == ["visualizations"]}
    assert logged["_type"] == "images/separated" and logged["count"] == 2
    assert sorted(logged["captions"]) == sorted(name for name in os.listdir(tmp_path / "vis") if name.endswith(".png"))
    for name in logged["filenames"]:  # the pictures themselves, copied into the run's files
        assert os.path.getsize(os.path.join(os.path.dirname(path), "files", name)) > 1000
