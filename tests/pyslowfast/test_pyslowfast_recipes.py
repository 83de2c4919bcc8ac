"""PySlowFast's recipes train what they describe: clips per decoded video, test-view
offsets, SSv2's layout, sampling and BGR input, the loss-explosion stop, and the log line
of accepted-but-unused keys in stdout.log."""

import json
import math
import os

import numpy as np
import pytest
import torch
from PIL import Image

from slowmask.config import load_config
from slowmask.data import build_dataset
from slowmask.data.clip_windows import OffsetClipSampler, SegmentSampler
from slowmask.engine.hooks import LossExplosionError, LossExplosionStop
from slowmask.engine.loop import TrainLoop
from slowmask.engine.train import train
from tool_scripts import load_tool

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
MAE_PT = os.path.join(HERE, "configs", "k400_VIT_B_16x4_MAE_PT.yaml")
SSV2 = os.path.join(HERE, "configs", "SSv2_MVITv2_S_16x4.yaml")
DEMO = os.path.join(REPO, "configs", "demo", "MViT_tiny_MaskFeat_PT.yaml")
model_info = load_tool("model_info")


def test_mae_pt_yaml_gives_four_windows_per_decoded_video(demo_data_dir):
    cfg = load_config(MAE_PT, ["DATA.PATH_TO_DATA_DIR", demo_data_dir])
    dataset = build_dataset(cfg, "train")
    assert (dataset.num_samples, dataset.crops_per_window, dataset.num_clips) == (4, 1, 4)
    item = dataset[0]
    assert len(item["clip"]) == 4 and len(item["mask"]) == 4
    assert item["clip"][0].shape == (3, 16, 224, 224) and item["mask"][0].shape == (8, 14, 14)
    # 8 x 14 x 14 = 1568 tokens per clip, 90 % masked: 1411 per clip, 4 clips per video.
    assert [int(m.sum()) for m in item["mask"]] == [1411] * 4


def test_windows_times_repeated_augmentations(demo_data_dir):
    cfg = load_config(DEMO, ["DATA.PATH_TO_DATA_DIR", demo_data_dir, "DATA.TRAIN_CROP_NUM_TEMPORAL", "2",
                             "AUG.NUM_SAMPLE", "2", "DATA.TRAIN_CROP_NUM_SPATIAL", "1"])
    item = build_dataset(cfg, "train")[3]
    first, _, second, _ = windows = item["meta"]["frame_indices"]
    assert len(item["clip"]) == 4 and windows == [first, first, second, second]
    assert not torch.equal(item["clip"][0], item["clip"][1])  # same frames, own crop and flip


def test_offset_sampling_spans_the_video_and_one_view_is_the_centre():
    sampler = OffsetClipSampler(num_frames=4, sampling_rate=2, target_fps=30, num_views=3)
    starts = [int(sampler(100, 30.0, torch.Generator(), k)[0]) for k in range(3)]
    assert starts == [0, 46, 92]  # delta = 100 - 7 = 93: k * floor(93 / 2)
    assert int(sampler(100, 30.0, torch.Generator(), 2)[-1]) == 98
    centre = OffsetClipSampler(num_frames=4, sampling_rate=2, target_fps=30, num_views=1)
    assert int(centre(100, 30.0, torch.Generator(), 0)[0]) == math.floor(93 / 2)
    cfg = load_config(MAE_PT, ["TEST.NUM_ENSEMBLE_VIEWS", "3"])
    assert cfg.DATA.USE_OFFSET_SAMPLING


def test_segment_sampler_takes_one_frame_per_segment():
    middle = SegmentSampler(num_frames=4, random=False)
    # 21 frames: segment size 5, segments [0, 5], [5, 10], [10, 15], [15, 20].
    assert middle(21, 30.0, torch.Generator()).tolist() == [2, 7, 12, 17]
    generator = torch.Generator().manual_seed(0)
    draws = torch.stack([SegmentSampler(4, random=True)(21, 30.0, generator) for _ in range(200)])
    assert draws.min(0).values.tolist() == [0, 5, 10, 15] and draws.max(0).values.tolist() == [5, 10, 15, 20]


RED = (230, 20, 10)  # RGB


def write_ssv2(root, num_videos: int = 2, num_frames: int = 21) -> str:
    """PySlowFast's SSv2 layout: label jsons and frame lists of solid red 32 x 40 frames."""
    templates = {"Pushing something": "0", "Putting something on something": "1"}
    entries = [{"id": str(100 + v), "template": ["Pushing [something]", "Putting [something] on [something]"][v % 2]}
               for v in range(num_videos)]
    lines = ["original_vido_id video_id frame_id path labels"]
    for v, entry in enumerate(entries):
        os.makedirs(os.path.join(root, entry["id"]), exist_ok=True)
        for k in range(num_frames):
            path = os.path.join(entry["id"], f"{k:06d}.png")
            Image.fromarray(np.full((32, 40, 3), RED, np.uint8)).save(os.path.join(root, path))
            lines.append(f"{entry['id']} {v} {k} {path} \"\"")
    with open(os.path.join(root, "something-something-v2-labels.json"), "w") as f:
        json.dump(templates, f)
    for split, csv in (("train", "train.csv"), ("validation", "val.csv")):
        with open(os.path.join(root, f"something-something-v2-{split}.json"), "w") as f:
            json.dump(entries, f)
        with open(os.path.join(root, csv), "w") as f:
            f.write("\n".join(lines) + "\n")
    return str(root)


def test_ssv2_yaml_runs_unchanged_apart_from_the_data_paths(tmp_path):
    root = write_ssv2(tmp_path)
    cfg = load_config(SSV2, ["DATA.PATH_TO_DATA_DIR", root, "DATA.PATH_PREFIX", root])
    assert cfg.TRAIN.DATASET == "ssv2" and cfg.DATA.REVERSE_INPUT_CHANNEL
    train_set, test_set = build_dataset(cfg, "train"), build_dataset(cfg, "test")
    assert type(train_set).__name__ == "Ssv2" and train_set.videos == [("100", 0), ("101", 1)]
    assert len(test_set) == 2 * 3  # one temporal view (all take the middle frames) x 3 crops
    segments = [(round(1.25 * i), round(1.25 * (i + 1))) for i in range(16)]
    train_item = train_set[0]
    assert train_item["clip"].shape == (3, 16, 224, 224)
    assert all(a <= k <= b for k, (a, b) in zip(train_item["meta"]["frame_indices"][0], segments))
    item = test_set[1]
    assert item["clip"].shape == (3, 16, 224, 224)
    assert item["meta"]["frame_indices"] == [[(a + b) // 2 for a, b in segments]]
    # read as BGR (PySlowFast's OpenCV order), reversed by DATA.REVERSE_INPUT_CHANNEL: RGB again
    means = item["clip"].mean(dim=(1, 2, 3)) * 0.225 + 0.45
    assert means.tolist() == pytest.approx([c / 255 for c in RED], abs=0.01)


def test_model_info_reads_the_ssv2_yaml(capsys):
    assert model_info.main(["--cfg", SSV2, "--no-flops"]) == 0
    assert "parameters: 34,363,950 (34.4 M)" in capsys.readouterr().out


class ScriptedLoss:
    def __init__(self, losses):
        self.losses = iter(losses)

    def __call__(self, batch):
        return {"loss": next(self.losses)}


def test_loss_explosion_stops_the_run_as_pyslowfast():
    calm = [1.0, 1.2, 0.8, 1.0, 1.0, 1.0, 1.9]  # 1.9 < 2 x mean of the 5 before (1.0)
    loop = TrainLoop(ScriptedLoss(calm), list(range(7)), [LossExplosionStop(2.0)], max_epoch=1)
    loop.run()
    exploding = [5.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.1]  # the first 6 steps are never checked
    loop = TrainLoop(ScriptedLoss(exploding), list(range(7)), [LossExplosionStop(2.0)], max_epoch=1)
    with pytest.raises(LossExplosionError, match=r"epoch 1, iteration 7: 2\.1 > TRAIN.KILL_LOSS_EXPLOSION_FACTOR 2"):
        loop.run()


def test_unused_keys_line_reaches_stdout_log(demo_data_dir, tmp_path):
    cfg = load_config(DEMO, [
        "DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(tmp_path), "DATA_LOADER.NUM_WORKERS", "0",
        "SOLVER.MAX_EPOCH", "1", "SOLVER.WARMUP_EPOCHS", "0.0", "NUM_GPUS", "0", "DEMO.FPS", "12", "RESNET.DEPTH", "101",
    ])
    train(cfg)
    log = (tmp_path / "stdout.log").read_text()
    assert "accepted but not used (PySlowFast features slowmask does not build): RESNET.DEPTH=101, DEMO.FPS=12" in log
