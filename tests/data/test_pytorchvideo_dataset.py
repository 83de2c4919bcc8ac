"""pytorchvideo's LabeledVideoDataset (list, order, clip samplers, decoding) with
slowmask's transforms and masks."""

import pytest
import torch
from counting_video import counting_frames, frame_numbers

from slowmask.data import PyTorchVideoDataset, build_dataset, build_loader
from slowmask.data.datasets.pytorchvideo_dataset import even_frames
from slowmask.data.video_writer import write_video


@pytest.fixture(scope="module")
def counting_list(tmp_path_factory):
    """Three 48-frame counting videos at 30 fps with labels 0, 1, 2 in val.csv / test.csv / train.csv."""
    root = tmp_path_factory.mktemp("ptv")
    lines = []
    for label in range(3):
        path = str(root / f"v{label}.mp4")
        write_video(path, counting_frames(48), fps=30)
        lines.append(f"{path} {label}\n")
    for split in ("train", "val", "test"):
        (root / f"{split}.csv").write_text("".join(lines))
    return str(root)


def ptv_cfg(cfg, root):
    cfg.DATA.PATH_TO_DATA_DIR = root
    cfg.TRAIN.DATASET = cfg.TEST.DATASET = "pytorchvideo_kinetics"
    cfg.DATA.MEAN, cfg.DATA.STD = [0.0] * 3, [1.0] * 3
    return cfg


def numbers(clip: torch.Tensor):
    return frame_numbers((clip * 255).permute(1, 2, 3, 0))


def test_even_frames_spreads_over_the_decoded_clip():
    video = torch.arange(16.0).view(1, 16, 1, 1).expand(3, 16, 2, 2) * 4
    assert frame_numbers(even_frames(video, 4)) == [0, 5, 10, 15]
    assert even_frames(video, 4).dtype == torch.uint8 and even_frames(video, 4).shape == (4, 2, 2, 3)


def test_validation_clip_is_the_first_window_evenly_subsampled(counting_list, tiny_cfg):
    dataset = build_dataset(ptv_cfg(tiny_cfg, counting_list), "val")
    assert isinstance(dataset, PyTorchVideoDataset) and len(dataset) == 3
    items = list(dataset)
    assert [item["label"] for item in items] == [0, 1, 2]
    # 4 frames at stride 4 and 30 fps: a 16/30 s clip = frames 0..15, evenly subsampled
    assert all(numbers(item["clip"]) == [0, 5, 10, 15] for item in items)
    assert items[0]["clip"].shape == (3, 4, 32, 32)


def test_test_views_cover_clips_and_crops(counting_list, tiny_cfg):
    dataset = build_dataset(ptv_cfg(tiny_cfg, counting_list), "test")
    items = list(dataset)
    assert len(items) == len(dataset) == 3 * 2 * 3
    assert sorted(item["index"] for item in items) == list(range(18))
    starts = {item["meta"]["temporal_index"]: numbers(item["clip"])[0] for item in items}
    assert starts[0] == 0 and starts[1] > 10


def test_training_batches_with_masks_through_the_loader(counting_list, tiny_cfg):
    cfg = ptv_cfg(tiny_cfg, counting_list)
    cfg.TRAIN.BATCH_SIZE = 2
    cfg.MASK.ENABLE, cfg.AUG.MASK_RATIO, cfg.AUG.MASK_WINDOW_SIZE = True, 0.5, [2, 2, 2]
    cfg.MVIT.DEPTH, cfg.MASK.PRETRAIN_DEPTH = 2, [1]
    batch = next(iter(build_loader(cfg, "train")))
    assert batch["clip"].shape == (2, 3, 4, 32, 32) and batch["mask"].shape == (2, 2, 2, 2)
    for clip in batch["clip"]:
        frames = numbers(clip)
        assert frames == sorted(frames) and frames[-1] - frames[0] in (14, 15, 16)


def test_repeated_sampling_is_refused_clearly(counting_list, tiny_cfg):
    cfg = ptv_cfg(tiny_cfg, counting_list)
    cfg.AUG.NUM_SAMPLE = 2
    with pytest.raises(ValueError, match="set AUG.NUM_SAMPLE 1"):
        build_dataset(cfg, "train")
