"""Testing and validation in a multi-process job: each process scores whole videos, the
per-video rows are gathered, every video counts once, and the figures equal those of one
process exactly."""

import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from slowmask.config import load_config
from slowmask.data import build_loader
from slowmask.data.index_samplers import VideoShardSampler
from slowmask import checkpoint
from slowmask.engine import resume
from slowmask.engine.evaluate import ViewScores, ensemble_views, evaluate, merge_shards, run_test, views_per_video
from slowmask.methods import build_model
from slowmask.utils.logging import read_json_stats

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN_NET = os.path.join(REPO, "tools", "run_net.py")
FT_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_FT.yaml")
PT_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_MaskFeat_PT.yaml")
NUM_VIDEOS, VIEWS, CLASSES = 7, 3, 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fake_views(items) -> ViewScores:
    """What predict_views returns for `items` (video * VIEWS + view) of a fixed score table."""
    table = torch.rand(NUM_VIDEOS * VIEWS, CLASSES, generator=torch.Generator().manual_seed(0))
    items = torch.as_tensor(list(items), dtype=torch.long)
    video = items // VIEWS
    return ViewScores(table[items], video % CLASSES, video, {int(v): f"v{int(v)}.mp4" for v in video})


def shard_items(world):
    return [list(VideoShardSampler(NUM_VIDEOS, VIEWS, rank, world)) for rank in range(world)]


@pytest.mark.parametrize("method", ["sum", "max"])
@pytest.mark.parametrize("world", [2, 3, 8])  # 8 ranks for 7 videos: one rank has none
def test_shards_hold_every_view_once_and_merge_to_the_one_process_scores(world, method):
    one = ensemble_views(fake_views(range(NUM_VIDEOS * VIEWS)), method)
    items = shard_items(world)
    assert sorted(sum(items, [])) == list(range(NUM_VIDEOS * VIEWS))
    assert [len(VideoShardSampler(NUM_VIDEOS, VIEWS, rank, world)) for rank in range(world)] == [len(i) for i in items]
    merged = merge_shards([ensemble_views(fake_views(share), method) for share in items])
    assert torch.equal(merged.video, torch.arange(NUM_VIDEOS))
    assert torch.equal(merged.scores, one.scores) and torch.equal(merged.labels, one.labels)
    assert merged.views.tolist() == [VIEWS] * NUM_VIDEOS and merged.paths == one.paths
    assert views_per_video(merged) == VIEWS


def test_a_padded_repeat_counts_once_and_split_views_are_refused():
    one = ensemble_views(fake_views(range(NUM_VIDEOS * VIEWS)))
    # torch's DistributedSampler evens 7 videos over 2 ranks by repeating video 0.
    padded = [[0, 2, 4, 6], [1, 3, 5, 0]]
    shards = [ensemble_views(fake_views(v * VIEWS + k for v in share for k in range(VIEWS))) for share in padded]
    merged = merge_shards(shards)
    assert torch.equal(merged.video, torch.arange(NUM_VIDEOS)) and torch.equal(merged.scores, one.scores)
    split = [ensemble_views(fake_views([3, 4])), ensemble_views(fake_views([5]))]  # video 1: views 0, 1 | 2
    with pytest.raises(ValueError, match=r"video 1 was scored by several processes with \[1, 2\] views"):
        merge_shards(split)
    with pytest.raises(ValueError, match="the evaluation split has no videos"):
        views_per_video(merge_shards([ensemble_views(fake_views([]))] * 2))


def test_video_shard_sampler_rejects_a_rank_outside_the_job():
    with pytest.raises(ValueError, match=r"rank 2 lies outside \[0, world size 2\)"):
        VideoShardSampler(5, 1, rank=2, world_size=2)


def small_splits(data_dir, out_dir):
    """train: 4 videos (one per class); test: 5, an odd number for 2 ranks; val: 1, so that
    rank 1 has no video to score and still takes part in the gather."""
    videos = open(os.path.join(data_dir, "train.csv")).read().splitlines()
    os.makedirs(out_dir)
    for split, rows in (("train", [0, 4, 8, 12]), ("val", [1]), ("test", [3, 7, 11, 15, 6])):
        with open(os.path.join(out_dir, f"{split}.csv"), "w") as f:
            f.write("".join(videos[row] + "\n" for row in rows))
    return out_dir


def tiny(data_dir, out_dir, shards, *opts):
    # Each process scores one clip per batch in both jobs (TEST.BATCH_SIZE is the job's):
    # a matrix product may round differently for another batch size, not for other clips.
    return [
        "DATA.PATH_TO_DATA_DIR", data_dir, "OUTPUT_DIR", str(out_dir), "NUM_GPUS", "0", "NUM_SHARDS", str(shards),
        "DATA_LOADER.NUM_WORKERS", "0", "MVIT.DEPTH", "2", "DATA.TEST_CROP_SIZE", "32",
        "DATA.TRAIN_CROP_SIZE", "32", "DATA.DECODING_SHORT_SIZE", "40", "TEST.NUM_ENSEMBLE_VIEWS", "2",
        "TEST.NUM_SPATIAL_CROPS", "3", "TEST.BATCH_SIZE", str(shards), "TRAIN.BATCH_SIZE", "4",
        "TRAIN.CHECKPOINT_FILE_PATH", "", "SOLVER.MAX_EPOCH", "1", "SOLVER.WARMUP_EPOCHS", "0.5",
        "TRAIN.EVAL_PERIOD", "1", "TEST.SAVE_RESULTS_PATH", "scores.pyth", "LOG_PERIOD", "1", *opts,
    ]


def test_two_gloo_processes_validate_and_test_as_one_process(demo_data_dir, tmp_path):
    data = small_splits(demo_data_dir, str(tmp_path / "data"))
    pair, single = tmp_path / "pair", tmp_path / "single"
    # torchrun's two processes train, validate and test, joining a process group for each job
    # in the same agent store (shards would start new processes for each).
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                "--master_addr", "127.0.0.1", "--master_port", str(free_port())]
    job = subprocess.run([*torchrun, RUN_NET, "--cfg", FT_CFG, *tiny(data, pair, 2)], capture_output=True, text=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert job.returncode == 0, job.stderr[-3000:] + job.stdout[-6000:]
    trained = str(pair / "checkpoints" / "checkpoint_epoch_00001.pyth")
    cfg = load_config(FT_CFG, tiny(data, single, 1, "TEST.CHECKPOINT_FILE_PATH", trained))

    tested = run_test(cfg)
    results = [json.loads((out / "test_results.json").read_text()) for out in (pair, single)]
    assert results[0] == results[1]
    assert tested["num_videos"] == 5 and tested["views_per_video"] == 6
    two, one = (torch.load(out / "scores.pyth", weights_only=True) for out in (pair, single))
    assert torch.equal(two["scores"], one["scores"]) and torch.equal(two["labels"], one["labels"])
    assert two["paths"] == one["paths"] and len(set(one["paths"])) == 5

    model = build_model(cfg)
    resume.resume(trained, model)
    validated = evaluate(model, build_loader(cfg, "val"), torch.device("cpu"), CLASSES, cfg.MODEL.HEAD_ACT,
                         cfg.DATA.ENSEMBLE_METHOD)
    (logged,) = [s for s in read_json_stats(str(pair)) if s["_type"] == "val_epoch"]  # rank 0's line only
    assert logged["num_videos"] == validated["num_videos"] == 1
    assert logged["top1_acc"] == round(validated["top1"], 6)
    assert "top5_acc" not in logged and "top5" not in validated  # 4 classes: top-5 is 100 % by construction
    assert os.path.exists(checkpoint.best_checkpoint_path(str(pair)))


def test_testing_a_pretraining_checkpoint_says_to_fine_tune_it_first(demo_data_dir, tmp_path):
    pretrained = str(tmp_path / "pt.pyth")
    pt_cfg = load_config(PT_CFG, ["MVIT.DEPTH", "2", "MASK.PRETRAIN_DEPTH", "[1]"])
    checkpoint.save_checkpoint(pretrained, build_model(pt_cfg), None, 0, pt_cfg.dump())
    cfg = load_config(FT_CFG, tiny(demo_data_dir, tmp_path, 1, "TRAIN.ENABLE", "False",
                                   "TEST.CHECKPOINT_FILE_PATH", pretrained))
    with pytest.raises(checkpoint.CheckpointError) as error:
        run_test(cfg)
    message = str(error.value)
    assert f"cannot test {pretrained}: it is a masked-pretraining checkpoint" in message
    assert f"Fine-tune it first (TRAIN.ENABLE True TRAIN.CHECKPOINT_FILE_PATH {pretrained})" in message
    assert "or give TEST.CHECKPOINT_FILE_PATH a classifier checkpoint" in message
    assert "CHECKPOINT_EPOCH_RESET" not in message
