"""Multi-clip x multi-view probing: each scored video encoded as temporal clips x spatial
crops, each probe's class scores averaged over them."""

import json

import torch
from torch import nn

from tool_scripts import DEMO_CFG, demo_overrides, load_tool

from slowmask.config import load_config
from slowmask.data import EvalTransform
from slowmask.data.clip_windows import CenterClipSampler, OffsetClipSampler, UniformClipSampler
from slowmask.engine.probe import (
    ProbeSet, average_views, build_probe_clips, encode_probe_set, item_labels, probe_outcomes,
)
from slowmask.engine.probe_heads import HeadScores
from slowmask.features import MediaClips


class CountingVideo:
    """48 frames of 24 x 40 at 30 fps: channel 0 holds the frame index, channel 1 the column."""

    fps, num_frames = 30.0, 48

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def get_frames(self, indices):
        frames = torch.zeros(len(indices), 24, 40, 3, dtype=torch.uint8)
        frames[..., 0] = torch.as_tensor(indices, dtype=torch.uint8).view(-1, 1, 1)
        frames[..., 1] = torch.arange(40, dtype=torch.uint8)
        return frames


def views_of(num_videos, clips, crops):
    return MediaClips([f"video{i}.mp4" for i in range(num_videos)], lambda path: CountingVideo(),
                      UniformClipSampler(4, 2, 30.0, num_views=clips),
                      EvalTransform(16, 16, [0.0] * 3, [1 / 255] * 3, num_views=crops), num_frames=4,
                      num_clips=clips, num_crops=crops)


def test_each_video_gives_clips_times_crops_views_in_video_major_order():
    dataset = views_of(2, clips=2, crops=3)
    assert len(dataset) == 12
    items = [dataset[i] for i in range(12)]
    assert [(item["index"], item["view"]) for item in items] == [(v, k) for v in range(2) for k in range(6)]
    first_frame = [int(item["clip"][0, 0, 0, 0]) for item in items[:6]]  # channel 0 = frame index
    left_column = [int(item["clip"][1, 0, 0, 0]) for item in items[:6]]  # channel 1 = column (x 24/16 scale)
    # Clip k of 2 starts at delta * k / 2 with delta = 48 - 8 frames: frames 0 and 20.
    assert first_frame == [0, 0, 0, 20, 20, 20]
    # Crops left, centre, right of the 40 x 24 frame resized to 26 x 16: a 16 wide crop at 0, 5, 10.
    assert left_column[:3] == left_column[3:] and left_column[0] < left_column[1] < left_column[2]
    assert torch.equal(items[1]["clip"], views_of(2, 2, 3)[7]["clip"])  # a view is the same in every video


class CountingEncoder(nn.Module):
    """encoder.forward_features: (B, 3, T, H, W) -> (B, 2, 3) tokens from the clip's means;
    counts the clips it encodes."""

    def __init__(self):
        super().__init__()
        self.encoded = 0

    def forward_features(self, x):
        self.encoded += x.shape[0]
        return x.mean(dim=(2, 3, 4))[:, None].expand(-1, 2, -1)


class Encoded(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = CountingEncoder()


def test_every_view_is_encoded_once_and_labelled_with_its_video():
    model = Encoded()
    probe_set = encode_probe_set(model, views_of(3, clips=2, crops=3), [7, 8, 9], torch.device("cpu"), batch_size=4)
    assert model.encoder.encoded == 18
    assert probe_set.pooled.shape == (18, 3)
    assert probe_set.items.tolist() == [v for v in range(3) for _ in range(6)]
    assert probe_set.labels.tolist() == [7] * 6 + [8] * 6 + [9] * 6
    assert item_labels(probe_set).tolist() == [7, 8, 9]


def test_the_averaged_prediction_is_the_mean_of_the_views_scores():
    # Video 0: one confident view of class 0 outweighs two weak ones of class 1 (a vote would say 1).
    scores = torch.tensor([[0.0, 1.0], [5.0, 0.0], [0.0, 1.0], [0.0, 2.0], [1.0, 0.0], [0.0, 2.0]])
    items = torch.tensor([0, 0, 0, 1, 1, 1])
    expected = torch.stack([scores[:3].mean(dim=0), scores[3:].mean(dim=0)])
    torch.testing.assert_close(average_views(scores, items), expected, atol=1e-6, rtol=0)
    assert average_views(scores, items).argmax(dim=1).tolist() == [0, 1]
    # The views' rows in any order: the same per-video scores.
    shuffled = torch.tensor([5, 0, 3, 1, 4, 2])
    torch.testing.assert_close(average_views(scores[shuffled], items[shuffled]), expected, atol=1e-6, rtol=0)
    query = ProbeSet(torch.zeros(6, 1), torch.tensor([0, 0, 0, 0, 0, 0]), items=items)
    outcome = probe_outcomes(query, query, 2, {"fixed": lambda *args: [HeadScores(scores)]})["fixed"]
    assert outcome.top1 == 50.0  # video 0 right, video 1 wrong: per video, not per view (which gives 1 of 6)


def test_the_probe_tool_scores_each_video_over_its_views(demo_data_dir, tmp_path, caplog):
    out = tmp_path / "probe.json"
    argv = ["--cfg", DEMO_CFG, "--eval-split", "val", "--probes", "knn", "linear", "--json", str(out),
            *demo_overrides(demo_data_dir, str(tmp_path)), "PROBE.KNN_K", "4", "PROBE.LINEAR_MAX_ITERS", "10",
            "PROBE.TRAIN_MAX_ITEMS", "8", "PROBE.NUM_ENSEMBLE_VIEWS", "2", "PROBE.NUM_SPATIAL_CROPS", "3"]
    with caplog.at_level("INFO"):
        assert load_tool("probe").main(argv) == 0
    figures = json.loads(out.read_text())
    assert figures["views"] == [2, 3]
    assert figures["majority_baseline"] == 25.0  # 4 videos, one per class: per video, not per view
    assert figures["knn"] in (0.0, 25.0, 50.0, 75.0, 100.0) and figures["linear"] in (0.0, 25.0, 50.0, 75.0, 100.0)
    assert "on 8 train items and 24 val views (2 x 3 per item)" in caplog.text


def test_the_scored_split_takes_testings_windows(demo_data_dir):
    def sampler(*opts):
        cfg = load_config(DEMO_CFG, ["DATA.PATH_TO_DATA_DIR", demo_data_dir, *opts])
        clips, labels = build_probe_clips(cfg, "val", views=(4, 3) if opts else (1, 1))
        assert len(clips) == len(labels) * (12 if opts else 1)
        return clips.sampler

    assert isinstance(sampler(), CenterClipSampler)
    uniform, offset = sampler("DATA.USE_OFFSET_SAMPLING", "False"), sampler("DATA.USE_OFFSET_SAMPLING", "True")
    # 48 frames, windows of 8 frames 4 apart: starts delta * k / 4 (delta = 19), or up to the last frame.
    assert [uniform(48, 30.0, None, k)[0].item() for k in range(4)] == [0, 5, 10, 14]
    assert [offset(48, 30.0, None, k)[[0, -1]].tolist() for k in range(4)] == [[0, 28], [6, 34], [12, 40], [18, 46]]
