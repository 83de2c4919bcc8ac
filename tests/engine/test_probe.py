"""Representation probes: k-NN votes, linear and attentive probes on cached features, the
probe hook of pretraining."""

import json
import multiprocessing
import os
import re
import socket

import pytest
import torch
import torch.distributed as dist
from torch import nn

from slowmask.config import ConfigError, load_config
from slowmask.engine.probe import (
    AttentivePooler, CachedClips, ProbeError, attentive_probe_predict, build_probe_evaluation, check_labels,
    encode_probe_set, knn_predict, linear_probe_predict, standardized, top1,
)
from slowmask.engine.hooks import ProbeHook
from slowmask.engine.train import train
from slowmask.methods import build_model
from slowmask.utils.logging import read_json_stats

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_MaskFeat_PT.yaml")


def blobs(num_per_class, dim, num_classes, seed, spread=0.3):
    """Gaussian blobs around orthogonal centres: (N, dim) features and (N,) labels."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(num_classes).repeat_interleave(num_per_class)
    centres = torch.eye(dim)[:num_classes] * 3.0
    return centres[labels] + spread * torch.randn(len(labels), dim, generator=generator), labels


def test_knn_weighs_votes_by_similarity_through_the_temperature():
    # Two neighbours of class 0 at 60 degrees, one of class 1 at 10 degrees from the query.
    angles = torch.tensor([60.0, -60.0, 10.0]).deg2rad()
    train = torch.stack([angles.cos(), angles.sin()], dim=1)
    labels = torch.tensor([0, 0, 1])
    query = torch.tensor([[1.0, 0.0]])
    # Sharp votes: exp(cos 10 / 0.07) outweighs 2 exp(cos 60 / 0.07); flat votes: two beat one.
    assert knn_predict(train, labels, query, num_classes=2, k=3, temperature=0.07).tolist() == [1]
    assert knn_predict(train, labels, query, num_classes=2, k=3, temperature=100.0).tolist() == [0]
    assert knn_predict(train, labels, query, num_classes=2, k=1, temperature=100.0).tolist() == [1]
    # Cosine similarity: the scale of a feature does not matter.
    assert knn_predict(train * 7.0, labels, query * 0.1, num_classes=2, k=3, temperature=0.07).tolist() == [1]


def test_knn_refuses_a_k_below_one():
    with pytest.raises(ValueError, match="k >= 1"):
        knn_predict(torch.ones(2, 3), torch.zeros(2, dtype=torch.long), torch.ones(1, 3), 2, k=0)


def test_standardized_uses_the_training_rows_statistics():
    train = torch.tensor([[1.0, 10.0], [3.0, 30.0]])
    query = torch.tensor([[2.0, 50.0]])
    train_z, query_z = standardized(train, query)
    torch.testing.assert_close(train_z, torch.tensor([[-1.0, -1.0], [1.0, 1.0]]), atol=1e-5, rtol=0)
    torch.testing.assert_close(query_z, torch.tensor([[0.0, 3.0]]), atol=1e-5, rtol=0)


def test_linear_probe_separates_blobs_and_repeats_with_its_seed():
    train, train_labels = blobs(20, 8, 4, seed=0)
    query, query_labels = blobs(10, 8, 4, seed=1)
    first = linear_probe_predict(train, train_labels, query, 4, seed=3)
    assert top1(first, query_labels) == 100.0
    assert torch.equal(first, linear_probe_predict(train, train_labels, query, 4, seed=3))


def tokens_with_one_informative(num_items, seed, length=8, dim=8):
    """(N, L, D) noise tokens where one token at a random position carries the class
    (+2 or -2 on dimension 0): a mean over the tokens dilutes it by L."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(num_items) % 2
    tokens = 0.5 * torch.randn(num_items, length, dim, generator=generator)
    where = torch.randint(length, (num_items,), generator=generator)
    tokens[torch.arange(num_items), where, 0] = 4.0 * labels - 2.0
    tokens[torch.arange(num_items), where, 1] = 3.0  # marks the informative token
    return tokens, labels


def test_attentive_probe_finds_the_informative_token():
    train, train_labels = tokens_with_one_informative(64, seed=0)
    query, query_labels = tokens_with_one_informative(32, seed=1)
    predicted = attentive_probe_predict(train, train_labels, query, 2, epochs=60, lr=0.01, batch_size=32)
    assert top1(predicted, query_labels) == 100.0
    assert AttentivePooler(8, 5, num_heads=2)(train[:3]).shape == (3, 5)


def test_labels_outside_the_classes_are_refused_with_the_key_to_set():
    with pytest.raises(ProbeError, match="PROBE.NUM_CLASSES"):
        check_labels(torch.tensor([0, 4]), 4, "train")
    with pytest.raises(ProbeError, match="no readable items"):
        check_labels(torch.zeros(0, dtype=torch.long), 4, "val")


class FakeLoop:
    max_epoch = 5

    def __init__(self, epoch):
        self.epoch = epoch


def test_hook_probes_every_period_and_after_the_last_epoch(tmp_path):
    calls = []

    def evaluate():
        calls.append(torch.rand(1))  # a probe that draws from the global generator
        return {"knn": 50.0, "linear": 62.5}

    hook = ProbeHook(evaluate, period=2, output_dir=str(tmp_path))
    state = torch.get_rng_state()
    for epoch in range(5):
        hook.before_epoch(FakeLoop(epoch))
        hook.after_epoch(FakeLoop(epoch))
    assert torch.equal(torch.get_rng_state(), state)  # the run's random state is untouched
    records = read_json_stats(str(tmp_path))
    assert [r["epoch"] for r in records] == ["2/5", "4/5", "5/5"]
    assert {r["_type"] for r in records} == {"probe_epoch"}
    assert records[0]["knn_top1_acc"] == 50.0 and records[0]["linear_top1_acc"] == 62.5
    assert len(calls) == 3
    with pytest.raises(ValueError, match="PROBE.PERIOD"):
        ProbeHook(evaluate, period=0, output_dir=str(tmp_path))


def demo_cfg(data_dir, out_dir, *opts):
    return load_config(DEMO_CFG, [
        "DATA.PATH_TO_DATA_DIR", data_dir, "OUTPUT_DIR", str(out_dir), "DATA_LOADER.NUM_WORKERS", "0",
        "SOLVER.MAX_EPOCH", "1", "SOLVER.WARMUP_EPOCHS", "0.5", "LOG_PERIOD", "1", *opts,
    ])


def probe_hooks(hooks):
    return [hook for hook in hooks if isinstance(hook, ProbeHook)]


def test_probe_is_off_by_default_and_for_classifiers(demo_data_dir, tmp_path, hooks_of):
    assert probe_hooks(hooks_of(demo_cfg(demo_data_dir, tmp_path))) == []
    classifier = demo_cfg(demo_data_dir, tmp_path, "PROBE.ENABLE", "True", "MASK.ENABLE", "False")
    assert probe_hooks(hooks_of(classifier)) == []


def test_a_pooling_the_encoder_cannot_give_is_refused_when_the_probe_is_built(demo_data_dir, tmp_path):
    cfg = demo_cfg(demo_data_dir, tmp_path, "PROBE.ENABLE", "True", "PROBE.POOLING", "mean_last_k")
    model = build_model(cfg)
    with pytest.raises(ConfigError, match="the last 3 share one stage; set PROBE.POOL_LAST_K to at most 3"):
        build_probe_evaluation(cfg, model, torch.device("cpu"), "val")  # at set-up, not after the first epoch
    cfg = demo_cfg(demo_data_dir, tmp_path, "PROBE.POOLING", "mean_last_k", "PROBE.POOL_LAST_K", "3")
    evaluation = build_probe_evaluation(cfg, model, torch.device("cpu"), "val")
    assert (evaluation.encode["pooling"], evaluation.encode["last_k"]) == ("mean_last_k", 3)


def test_pretraining_logs_knn_linear_and_attentive_top1_of_the_val_videos(demo_data_dir, tmp_path):
    train(demo_cfg(demo_data_dir, tmp_path, "PROBE.ENABLE", "True", "PROBE.LINEAR", "True",
                   "PROBE.LINEAR_MAX_ITERS", "20", "PROBE.KNN_K", "4", "PROBE.TRAIN_MAX_ITEMS", "8",
                   "PROBE.ATTENTIVE", "True", "PROBE.ATTENTIVE_EPOCHS", "2", "PROBE.ATTENTIVE_LRS", "[0.01, 0.001]"))
    (record,) = [r for r in read_json_stats(str(tmp_path)) if r["_type"] == "probe_epoch"]
    assert record["epoch"] == "1/1"
    # 4 val videos: every top-1 is a whole number of them.
    for key in ("knn_top1_acc", "linear_top1_acc", "attentive_top1_acc"):
        assert record[key] in (0.0, 25.0, 50.0, 75.0, 100.0), record
    assert record["chance"] == 25.0  # 4 classes
    log = (tmp_path / "stdout.log").read_text()
    assert re.search(r"probe after epoch 1: knn top-1 [\d.]+ %, linear top-1 [\d.]+ %, attentive top-1 [\d.]+ % "
                     r"\(chance 25.00 %\)", log)
    best = re.search(r"probe attentive: top-1 ([\d.]+) \(best of 2 heads: lr (0.01|0.001), weight_decay 0.01\)", log)
    assert best and float(best.group(1)) == record["attentive_top1_acc"]


class ClipList(torch.utils.data.Dataset):
    """MediaClips' items from (N, 3, T, S, S) clips."""

    def __init__(self, clips):
        self.clips = clips

    def __len__(self):
        return len(self.clips)

    def __getitem__(self, index):
        return {"index": index, "path": f"clip{index}", "clip": self.clips[index]}


@pytest.mark.parametrize("recipe, tokens", [("ViT_tiny_MAE_PT.yaml", 64), ("ViT_tiny_MaskFeat_PT.yaml", 64)])
def test_sparse_and_dense_encoders_give_the_mean_of_all_their_tokens(recipe, tokens):
    cfg = load_config(os.path.join(REPO, "configs", "demo", recipe))
    torch.manual_seed(0)
    model = build_model(cfg).train()
    clips = torch.randn(3, 3, 8, 64, 64)
    probe_set = encode_probe_set(model, ClipList(clips), [2, 0, 1], torch.device("cpu"), batch_size=2,
                                 keep_tokens=True)
    assert probe_set.tokens.shape == (3, tokens, 64) and probe_set.labels.tolist() == [2, 0, 1]
    torch.testing.assert_close(probe_set.pooled, probe_set.tokens.mean(dim=1), atol=1e-6, rtol=0)
    assert model.training  # the probe leaves the training mode as it found it
    # Every token is encoded, nothing masked: a second pass gives the same features.
    again = encode_probe_set(model, ClipList(clips), [2, 0, 1], torch.device("cpu"), batch_size=3)
    torch.testing.assert_close(again.pooled, probe_set.pooled, atol=1e-5, rtol=0)


def test_cached_clips_are_decoded_once():
    reads = []

    class Counting(ClipList):
        def __getitem__(self, index):
            reads.append(index)
            return super().__getitem__(index)

    cached = CachedClips(Counting(torch.randn(4, 3, 1, 8, 8)))
    assert [cached[i]["index"] for i in range(4)] == [0, 1, 2, 3]
    assert [cached[i]["index"] for i in range(4)] == [0, 1, 2, 3]
    assert sorted(reads) == [0, 1, 2, 3]


def test_probes_leave_the_global_random_state_as_they_found_it():
    train, train_labels = blobs(5, 4, 2, seed=0)
    state = torch.get_rng_state()
    linear_probe_predict(train, train_labels, train, 2, max_iters=5)
    attentive_probe_predict(train[:, None], train_labels, train[:, None], 2, epochs=1)
    assert torch.equal(torch.get_rng_state(), state)


class TokenEncoder(nn.Module):
    """encoder.forward_features(x): (B, 1, T, H, W) clips -> (B, T*H*W, 1) tokens."""

    def forward_features(self, x):
        return x.flatten(2).transpose(1, 2)


class Encoded(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = TokenEncoder()


def _encode_on_rank(rank, world, port, out_dir):
    """A spawned rank of a gloo group: encode its share of 5 clips, write what it gathered."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        clips = torch.arange(5.0).reshape(5, 1, 1, 1, 1).expand(5, 1, 1, 2, 2).contiguous()
        probe_set = encode_probe_set(Encoded(), ClipList(clips), [10, 11, 12, 13, 14], torch.device("cpu"))
        result = {"pooled": probe_set.pooled[:, 0].tolist(), "labels": probe_set.labels.tolist()}
    finally:
        dist.destroy_process_group()
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(result, f)


def test_features_are_gathered_across_ranks_with_their_labels(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    context = multiprocessing.get_context("spawn")
    ranks = [context.Process(target=_encode_on_rank, args=(rank, 2, port, str(tmp_path))) for rank in range(2)]
    for process in ranks:
        process.start()
    for process in ranks:
        process.join(60)
    results = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(2)]
    # Rank 0 encodes items 0, 2, 4 and rank 1 items 1, 3; every rank gets all, each with its label.
    assert results[0] == results[1] == {"pooled": [0.0, 2.0, 4.0, 1.0, 3.0], "labels": [10, 12, 14, 11, 13]}
