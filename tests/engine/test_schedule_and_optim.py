import math

import pytest
import torch
from torch import nn

from slowmask.config import ConfigError, load_config
from slowmask.engine.optim import build_lr_schedule, build_optimizer, param_groups


def cosine_cfg(*opts):
    return load_config(None, [
        "SOLVER.BASE_LR", "1.0", "SOLVER.COSINE_END_LR", "0.01", "SOLVER.MAX_EPOCH", "10",
        "SOLVER.WARMUP_EPOCHS", "2.0", "SOLVER.WARMUP_START_LR", "0.1",
        "SOLVER.COSINE_AFTER_WARMUP", "True", *opts,
    ])


def test_warmup_then_cosine():
    lr = build_lr_schedule(cosine_cfg())
    assert lr(0.0) == pytest.approx(0.1)
    assert lr(1.0) == pytest.approx(0.55)  # half way up the linear warm-up
    assert lr(2.0) == pytest.approx(1.0)  # the cosine starts at its peak after warm-up
    assert lr(6.0) == pytest.approx(0.01 + 0.99 * 0.5)
    assert lr(10.0) == pytest.approx(0.01)
    values = [lr(e / 10) for e in range(20, 100)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_cosine_over_all_epochs_and_shard_scaling():
    cfg = cosine_cfg("SOLVER.COSINE_AFTER_WARMUP", "False", "SOLVER.WARMUP_EPOCHS", "0.0",
                     "NUM_SHARDS", "2", "SOLVER.BASE_LR_SCALE_NUM_SHARDS", "True")
    lr = build_lr_schedule(cfg)
    assert lr(0.0) == pytest.approx(2.0)
    assert lr(5.0) == pytest.approx(0.02 + 1.98 * 0.5 * (1 + math.cos(math.pi / 2)))


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, 4))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, 4))
        self.rel_pos_h = nn.Parameter(torch.zeros(7, 4))
        self.fc = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)
        self.frozen = nn.Parameter(torch.zeros(3), requires_grad=False)


def grouped_names(model, zero_1d, zero_pos):
    names = {id(p): n for n, p in model.named_parameters()}
    groups = param_groups(model.named_parameters(), 0.05, zero_1d, zero_pos)
    return {g["weight_decay"]: sorted(names[id(p)] for p in g["params"]) for g in groups}


def test_no_weight_decay_groups():
    groups = grouped_names(Tiny(), zero_1d=True, zero_pos=True)
    assert groups[0.05] == ["fc.weight"]
    assert groups[0.0] == ["cls_token", "fc.bias", "mask_token", "norm.bias", "norm.weight", "rel_pos_h"]
    groups = grouped_names(Tiny(), zero_1d=True, zero_pos=False)
    assert groups[0.05] == ["cls_token", "fc.weight", "mask_token", "rel_pos_h"]


def test_build_adamw():
    cfg = load_config(None, ["SOLVER.OPTIMIZING_METHOD", "adamw", "SOLVER.ZERO_WD_1D_PARAM", "True"])
    assert isinstance(build_optimizer(cfg, Tiny()), torch.optim.AdamW)


class Blocks(nn.Module):
    """Names of an MViT with 3 blocks: stem, blocks.0-2, final norm and head."""

    def __init__(self):
        super().__init__()
        self.patch_embed = nn.Linear(2, 4)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, 4))
        self.blocks = nn.ModuleList(nn.Linear(4, 4) for _ in range(3))
        self.norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 2)


def test_layer_decay_gives_each_block_its_learning_rate():
    from slowmask.engine.hooks import LRSchedule
    from slowmask.engine.loop import TrainLoop

    cfg = load_config(None, ["SOLVER.OPTIMIZING_METHOD", "adamw", "SOLVER.LAYER_DECAY", "0.5", "MVIT.DEPTH", "3",
                             "SOLVER.ZERO_WD_1D_PARAM", "True"])
    model = Blocks()
    optimizer = build_optimizer(cfg, model)
    loop = TrainLoop(lambda batch: {}, [0], hooks=[], max_epoch=1)
    LRSchedule(optimizer, lambda epoch: 0.8).before_step(loop)
    lr_of = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    expected = {
        "patch_embed.weight": 0.8 * 0.5**4, "cls_token": 0.8 * 0.5**4,
        "blocks.0.weight": 0.8 * 0.5**3, "blocks.1.bias": 0.8 * 0.5**2, "blocks.2.weight": 0.8 * 0.5,
        "norm.weight": 0.8, "head.weight": 0.8,
    }
    named = dict(model.named_parameters())
    for name, lr in expected.items():
        assert lr_of[id(named[name])] == pytest.approx(lr), name
    decay_of = {id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    assert decay_of[id(named["blocks.1.bias"])] == 0.0 and decay_of[id(named["blocks.1.weight"])] == cfg.SOLVER.WEIGHT_DECAY
    with pytest.raises(ConfigError, match=r"SOLVER.LAYER_DECAY must lie in \(0, 1\]"):
        load_config(None, ["SOLVER.LAYER_DECAY", "1.5"])
