"""projects/custom_dataset: a dataset, a mask and a target registered from files outside
the package (DATA.CUSTOM_MODULES, imported when the config is loaded), chosen by config
only, train a tiny model."""

import os

import torch

from slowmask.config import load_config
from slowmask.data import DATASET_REGISTRY, build_dataset
from slowmask.engine.train import train
from slowmask.masking import build_mask_generator
from slowmask.targets import TARGET_REGISTRY
from slowmask.utils.logging import read_json_stats

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROJECT = os.path.join(REPO, "projects", "custom_dataset")
PROJECT_CFG = os.path.join(PROJECT, "configs", "MViT_tiny_MyParts_PT.yaml")


def project_cfg(data_dir, out_dir, *opts):
    return load_config(PROJECT_CFG, [
        "DATA.PATH_TO_DATA_DIR", data_dir, "OUTPUT_DIR", str(out_dir), "DATA_LOADER.NUM_WORKERS", "0",
        "LOG_PERIOD", "1", "SOLVER.MAX_EPOCH", "1", "SOLVER.WARMUP_EPOCHS", "0.0", *opts,
    ])


def test_the_example_dataset_lists_the_demo_videos_by_class(demo_data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # DATA.CUSTOM_MODULES is relative to the yaml, not the working directory
    dataset = build_dataset(project_cfg(demo_data_dir, tmp_path), "train")
    assert type(dataset).__name__ == "MyDataset" and "MyDataset" in [name for name, _ in DATASET_REGISTRY]
    assert len(dataset) == 16 and sorted({label for _, label in dataset.videos}) == [0, 1, 2, 3]
    circle = [label for path, label in dataset.videos if os.path.basename(path).startswith("circle_horizontal")]
    assert set(circle) == {0}


def test_the_example_mask_masks_whole_rows(demo_data_dir, tmp_path):
    cfg = project_cfg(demo_data_dir, tmp_path)
    masks = [build_mask_generator(cfg)(torch.Generator().manual_seed(seed)) for seed in range(4)]
    for mask in masks:  # AUG.MASK_WINDOW_SIZE 4x4x4, AUG.MASK_RATIO 0.4: 2 of the 4 rows
        rows = mask.any(dim=2)
        assert mask.shape == (4, 4, 4) and torch.equal(mask.all(dim=2), rows) and rows.sum(dim=1).tolist() == [2] * 4
        assert torch.equal(rows, rows[:1].expand(4, -1))  # the same rows in every frame
    assert len({tuple(mask[0, :, 0].tolist()) for mask in masks}) > 1  # drawn from the generator


def test_the_example_target_is_the_pixels_of_the_frame_to_frame_change(demo_data_dir, tmp_path):
    target = TARGET_REGISTRY.build("frame_difference", project_cfg(demo_data_dir, tmp_path, "MASK.NORM_PRED_PIXEL",
                                                                   "False", "MASK.TIME_STRIDE_LOSS", "False"))
    still = torch.rand(1, 3, 1, 4, 4).expand(2, 3, 4, 4, 4)  # the same frame 4 times: no change
    assert torch.equal(target(still, (2, 2, 2)), torch.zeros(2, 8, 2 * 2 * 2 * 3))
    ramp = torch.arange(4.0).view(1, 1, 4, 1, 1).expand(1, 3, 4, 4, 4)  # +1 a frame, last change 0
    assert sorted(set(target(ramp, (1, 1, 1)).flatten().tolist())) == [0.0, 1.0]


def test_the_example_trains_a_tiny_model_with_its_three_parts(demo_data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = project_cfg(demo_data_dir, tmp_path)
    target_class = TARGET_REGISTRY.get("frame_difference")
    calls = []
    forward = target_class.forward
    monkeypatch.setattr(target_class, "forward", lambda self, clip, grid: calls.append(clip.shape) or forward(
        self, clip, grid))
    train(cfg)
    steps = [s for s in read_json_stats(str(tmp_path)) if s["_type"] == "train_iter"]
    # 16 videos in batches of 8; each item masks 2 of the 4 rows of its mask grid: half of
    # its 4x8x8 prediction tokens.
    assert len(steps) == 2 and [s["masked_tokens"] for s in steps] == [8 * 128] * 2
    assert calls == [(8, 3, 8, 64, 64)] * 2
    assert os.path.exists(tmp_path / "checkpoints" / "checkpoint_epoch_00001.pyth")


def test_a_module_path_in_a_base_yaml_is_relative_to_that_yaml(tmp_path):
    child = tmp_path / "child.yaml"
    child.write_text(f"_BASE_: {PROJECT_CFG}\nSOLVER:\n  MAX_EPOCH: 30\n")
    cfg = load_config(str(child))
    assert cfg.DATA.CUSTOM_MODULES == [os.path.join(PROJECT, name) for name in ("my_dataset.py", "my_mask.py",
                                                                                "my_target.py")]
    assert load_config(str(child), ["DATA.CUSTOM_MODULES", "[]"]).DATA.CUSTOM_MODULES == []
