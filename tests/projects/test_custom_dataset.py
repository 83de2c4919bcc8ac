"""projects/custom_dataset: a dataset registered from a file outside the package,
chosen by config only, trains a tiny model."""

import os
import sys

from slowmask.config import load_config
from slowmask.data import DATASET_REGISTRY, build_dataset
from slowmask.engine.train import train
from slowmask.utils.logging import read_json_stats

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROJECT_CFG = os.path.join(REPO, "projects", "custom_dataset", "configs", "MViT_tiny_MyDataset_PT.yaml")


def project_cfg(data_dir, out_dir, *opts):
    return load_config(PROJECT_CFG, [
        "DATA.PATH_TO_DATA_DIR", data_dir, "OUTPUT_DIR", str(out_dir), "DATA_LOADER.NUM_WORKERS", "0",
        "LOG_PERIOD", "1", "SOLVER.MAX_EPOCH", "1", "SOLVER.WARMUP_EPOCHS", "0.0", *opts,
    ])


def test_the_example_dataset_lists_the_demo_videos_by_class(demo_data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # DATA.CUSTOM_MODULES is relative to the yaml, not the working directory
    assert "slowmask.data.MyDataset" not in sys.modules
    dataset = build_dataset(project_cfg(demo_data_dir, tmp_path), "train")
    assert type(dataset).__name__ == "MyDataset" and "MyDataset" in [name for name, _ in DATASET_REGISTRY]
    assert len(dataset) == 16 and sorted({label for _, label in dataset.videos}) == [0, 1, 2, 3]
    circle = [label for path, label in dataset.videos if os.path.basename(path).startswith("circle_horizontal")]
    assert set(circle) == {0}


def test_the_example_trains_a_tiny_model_from_its_config(demo_data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train(project_cfg(demo_data_dir, tmp_path))
    steps = [s for s in read_json_stats(str(tmp_path)) if s["_type"] == "train_iter"]
    assert steps and all(s["loss"] > 0 for s in steps)
    assert os.path.exists(tmp_path / "checkpoints" / "checkpoint_epoch_00001.pyth")


def test_a_module_path_in_a_base_yaml_is_relative_to_that_yaml(tmp_path):
    child = tmp_path / "child.yaml"
    child.write_text(f"_BASE_: {PROJECT_CFG}\nSOLVER:\n  MAX_EPOCH: 30\n")
    cfg = load_config(str(child))
    assert cfg.DATA.CUSTOM_MODULES == [os.path.join(REPO, "projects", "custom_dataset", "my_dataset.py")]
    assert load_config(str(child), ["DATA.CUSTOM_MODULES", "['mine.py']"]).DATA.CUSTOM_MODULES == ["mine.py"]
