"""V-JEPA 2's attentive probe: its blocks, a grid of heads trained in one pass, the best
head reported with its settings; the default one-head probe unchanged. The linear probe's
penalty chosen from a grid by cross-validation on the labelled set, and named."""

import pytest
import torch

from slowmask.config import ConfigError, get_defaults
from slowmask.engine.probe import (
    ProbeSet, attentive_probe_predict, attentive_settings, build_probes, cross_validated_l2, linear_probe_predict,
    linear_probe_scores, probe_outcomes, top1,
)
from slowmask.engine.probe_heads import (
    AttentiveClassifier, AttentivePooler, CrossAttentionBlock, SelfAttentionBlock, fit_classifier, fit_heads, seeded,
    standardized,
)


def tokens_with_one_informative(num_items, seed, length=8, dim=8):
    """(N, L, D) noise tokens where one token at a random position carries the class
    (+2 or -2 on dimension 0, marked by 3 on dimension 1): a mean over them dilutes it."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(num_items) % 2
    tokens = 0.5 * torch.randn(num_items, length, dim, generator=generator)
    where = torch.randint(length, (num_items,), generator=generator)
    tokens[torch.arange(num_items), where, 0] = 4.0 * labels - 2.0
    tokens[torch.arange(num_items), where, 1] = 3.0
    return tokens, labels


def test_the_blocks_probe_is_depth_minus_one_self_attention_blocks_then_cross_attention():
    probe = AttentiveClassifier(dim=16, num_classes=5, num_heads=4, depth=4)
    assert [type(block) for block in probe.blocks] == [SelfAttentionBlock] * 3
    assert isinstance(probe.cross_block, CrossAttentionBlock)
    assert probe.query.shape == (1, 1, 16) and probe.linear.out_features == 5
    assert probe.cross_block.mlp.fc1.out_features == 64  # MLP ratio 4
    # V-JEPA 2's rescaling: block i's residual projections start divided by sqrt(2 i).
    tokens = torch.randn(3, 10, 16)
    assert probe(tokens).shape == (3, 5)
    # No positions: the tokens' order does not change the logits.
    torch.testing.assert_close(probe(tokens), probe(tokens[:, torch.randperm(10)]), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="depth >= 1"):
        AttentiveClassifier(dim=16, num_classes=5, depth=0)


def test_residual_projections_are_rescaled_by_depth():
    torch.manual_seed(0)
    stds = []
    for _ in range(3):
        probe = AttentiveClassifier(dim=256, num_classes=2, num_heads=4, depth=4)
        stds.append([float(block.mlp.fc2.weight.detach().std()) for block in probe.blocks])
    mean_std = torch.tensor(stds).mean(dim=0)
    # normal of std 0.02 (truncated at +-2, far out) over sqrt(2), sqrt(4), sqrt(6)
    expected = 0.02 / torch.tensor([2.0, 4.0, 6.0]).sqrt()
    torch.testing.assert_close(mean_std, expected, atol=0.0005, rtol=0)


def test_the_blocks_probe_finds_the_informative_token():
    train, train_labels = tokens_with_one_informative(64, seed=0)
    query, query_labels = tokens_with_one_informative(32, seed=1)
    train, query = standardized(train, query)
    head = seeded(lambda: AttentiveClassifier(8, 2, num_heads=2, depth=2), seed=0)
    fit_classifier(head, train, train_labels, epochs=30, lr=0.03, weight_decay=0.01, batch_size=32)
    with torch.no_grad():
        assert top1(head(query).argmax(dim=1), query_labels) == 100.0


def test_heads_trained_in_one_pass_equal_heads_trained_alone():
    train, labels = tokens_with_one_informative(24, seed=2)
    grid = [(0.01, 0.01), (0.001, 0.4)]
    together = fit_heads([seeded(lambda: AttentivePooler(8, 2), 5) for _ in grid], grid, train, labels,
                         epochs=3, batch_size=8, seed=7)
    for head, (lr, wd) in zip(together, grid):
        alone = fit_classifier(seeded(lambda: AttentivePooler(8, 2), 5), train, labels, 3, lr, wd, 8, seed=7)
        for (name, trained), single in zip(head.state_dict().items(), alone.state_dict().values()):
            torch.testing.assert_close(trained, single, atol=1e-6, rtol=0, msg=name)
    first, second = (torch.cat([p.flatten() for p in head.parameters()]) for head in together)
    assert not torch.equal(first, second)  # the settings made them differ


def probe_cfg(*opts):
    cfg = get_defaults()
    cfg.merge_from_list(["PROBE.ATTENTIVE_EPOCHS", "30", "PROBE.HEAD_BATCH_SIZE", "32", "PROBE.ATTENTIVE_HEADS", "2",
                         *opts])
    return cfg


def test_the_grid_crosses_learning_rates_and_weight_decays_weight_decay_major():
    cfg = probe_cfg("PROBE.ATTENTIVE_LRS", "[0.005, 0.001]", "PROBE.ATTENTIVE_WEIGHT_DECAYS", "[0.01, 0.4]")
    assert attentive_settings(cfg) == [(0.005, 0.01), (0.001, 0.01), (0.005, 0.4), (0.001, 0.4)]
    assert attentive_settings(probe_cfg()) == [(0.003, 0.01)]  # PROBE.ATTENTIVE_LR, ATTENTIVE_WEIGHT_DECAY


def test_the_best_head_is_the_one_with_the_best_score_and_is_named():
    train, train_labels = tokens_with_one_informative(64, seed=0)
    query, query_labels = tokens_with_one_informative(32, seed=1)
    cfg = probe_cfg("PROBE.ATTENTIVE_POOLER", "blocks", "PROBE.ATTENTIVE_DEPTH", "2",
                    "PROBE.ATTENTIVE_LRS", "[1e-7, 0.03]", "PROBE.ATTENTIVE_WEIGHT_DECAYS", "[0.01]")
    sets = [ProbeSet(tokens.mean(dim=1), labels, tokens) for tokens, labels in ((train, train_labels),
                                                                                  (query, query_labels))]
    probe = build_probes(cfg, linear=False, attentive=True)["attentive"]
    heads = probe(*sets, 2)
    assert [head.settings for head in heads] == [{"lr": 1e-7, "weight_decay": 0.01}, {"lr": 0.03, "weight_decay": 0.01}]
    expected = [top1(head.scores.argmax(dim=1), query_labels) for head in heads]
    assert expected[1] == 100.0 and expected[0] < 75.0  # lr 1e-7 barely moves from its initialization
    outcome = probe_outcomes(*sets, 2, {"attentive": lambda *args: heads})["attentive"]
    assert outcome.top1 == 100.0
    assert outcome.best == {"lr": 0.03, "weight_decay": 0.01}
    assert outcome.heads == [(heads[0].settings, expected[0]), (heads[1].settings, 100.0)]
    assert outcome.describe() == "100.00 (best of 2 heads: lr 0.03, weight_decay 0.01)"


def test_the_default_attentive_probe_gives_todays_predictions():
    train, train_labels = tokens_with_one_informative(40, seed=3)
    query, _ = tokens_with_one_informative(16, seed=4)
    cfg = probe_cfg("PROBE.ATTENTIVE_EPOCHS", "4", "RNG_SEED", "2")
    (head,) = build_probes(cfg, linear=False, attentive=True)["attentive"](
        ProbeSet(train.mean(dim=1), train_labels, train), ProbeSet(query.mean(dim=1), train_labels[:16], query), 2)
    assert head.settings == {}  # one head: nothing to tell it from (lr 0.003, weight decay 0.01 below)
    today = attentive_probe_predict(train, train_labels, query, 2, epochs=4, lr=0.003, weight_decay=0.01,
                                    batch_size=32, num_heads=2, seed=2)
    assert torch.equal(head.scores.argmax(dim=1), today)


def blobs(num_per_class, dim, seed, spread=0.3):
    """Two Gaussian blobs at +-1 on dimension 0 in `dim` noisy dimensions: (N, dim), (N,)."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(2).repeat_interleave(num_per_class)
    features = spread * torch.randn(len(labels), dim, generator=generator)
    features[:, 0] += 2.0 * labels - 1.0
    return features, labels


def test_cross_validation_scores_each_penalty_on_held_out_folds_and_chooses_the_best():
    # One informative dimension among 64 noisy ones and 24 rows: the penalty decides what is fitted.
    features, labels = blobs(12, 64, seed=0, spread=1.0)
    items = torch.arange(len(labels))
    l2, accuracy = cross_validated_l2(features, labels, items, 2, [1e-2, 1e2, 1.0], folds=3)
    assert list(accuracy) == [1e2, 1.0, 1e-2]  # largest first
    expected = {}
    for penalty in accuracy:  # each fold's rows scored by a probe fitted on the other folds
        held = [items % 3 == f for f in range(3)]
        expected[penalty] = 100.0 * sum(int((linear_probe_predict(
            features[~rows], labels[~rows], features[rows], 2, l2=penalty) == labels[rows]).sum()) for rows in held) / 24
    assert accuracy == expected
    assert len(set(expected.values())) > 1 and accuracy[l2] == max(expected.values())


def test_of_equally_good_penalties_cross_validation_keeps_the_largest():
    features, labels = blobs(12, 4, seed=0)
    l2, accuracy = cross_validated_l2(features, labels, torch.arange(len(labels)), 2, [1e-3, 1e-2, 1.0], folds=3)
    assert accuracy == {1.0: 100.0, 1e-2: 100.0, 1e-3: 100.0}
    assert l2 == 1.0


def test_cross_validation_keeps_an_items_views_in_one_fold():
    # Noise with random labels, each item seen twice: a held-out view whose twin was fitted would be
    # remembered by a barely penalized probe; with items kept whole there is nothing to learn.
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(40, 64, generator=generator).repeat_interleave(2, dim=0)
    labels = torch.randint(2, (40,), generator=generator).repeat_interleave(2)
    items = torch.arange(40).repeat_interleave(2)
    _, whole = cross_validated_l2(features, labels, items, 2, [1e-4, 1e-3], folds=4)
    _, split = cross_validated_l2(features, labels, torch.arange(80), 2, [1e-4, 1e-3], folds=4)
    assert max(whole.values()) < 75.0
    assert min(split.values()) == 100.0


def test_a_grid_of_penalties_names_the_chosen_one_and_one_penalty_gives_todays_probe():
    train, train_labels = blobs(12, 4, seed=1)
    query, query_labels = blobs(6, 4, seed=2)
    sets = (ProbeSet(train, train_labels), ProbeSet(query, query_labels))
    grid = probe_cfg("PROBE.LINEAR_L2S", "[1e-3, 1e-2]", "PROBE.LINEAR_FOLDS", "3")
    (head,) = build_probes(grid, linear=True)["linear"](*sets, 2)
    assert head.settings == {"l2": 1e-2}  # both separate the blobs: the larger
    torch.testing.assert_close(head.scores, linear_probe_scores(train, train_labels, query, 2, l2=1e-2, seed=grid.RNG_SEED))
    outcome = probe_outcomes(*sets, 2, {"linear": lambda *args: [head]})["linear"]
    assert (outcome.best, outcome.describe()) == ({"l2": 1e-2}, "100.00 (l2 0.01)")
    (today,) = build_probes(probe_cfg(), linear=True)["linear"](*sets, 2)
    assert today.settings == {}
    torch.testing.assert_close(today.scores, linear_probe_scores(train, train_labels, query, 2, l2=0.1, seed=grid.RNG_SEED))


@pytest.mark.parametrize("key, value, named", [
    ("PROBE.LINEAR_FOLDS", "1", "PROBE.LINEAR_FOLDS is 1; choosing among PROBE.LINEAR_L2S needs at least 2 folds"),
    ("PROBE.LINEAR_L2S", "[0.1, -1.0]", "PROBE.LINEAR_L2S holds -1.0; a penalty must be at least 0"),
    ("PROBE.ATTENTIVE_POOLER", "transformer", "PROBE.ATTENTIVE_POOLER is 'transformer'; supported: 'query', 'blocks'"),
    ("PROBE.POOLING", "max", "PROBE.POOLING is 'max'"),
    ("PROBE.NUM_SPATIAL_CROPS", "0", "PROBE.NUM_SPATIAL_CROPS is 0; it must be at least 1"),
])
def test_unknown_probe_choices_are_refused_naming_the_key(key, value, named):
    grid = ["PROBE.LINEAR_L2S", "[0.1, 0.01]"] if key == "PROBE.LINEAR_FOLDS" else []
    with pytest.raises(ConfigError, match=named.replace("(", r"\(")):
        build_probes(probe_cfg(*grid, key, value), linear=False, attentive=True)
