"""Linear probing (MAE's protocol): frozen encoder, BatchNorm without affine, head trained."""

import torch

from slowmask.engine.optim import build_optimizer
from slowmask.engine.step import ClassificationObjective, TrainStep
from slowmask.methods import build_model
from slowmask.models import build_loss


def test_a_step_changes_the_head_only(make_cfg, tiny_mvit):
    cfg = make_cfg(tiny_mvit, ["MODEL.LINEAR_PROBE", "True", "MODEL.NUM_CLASSES", "3", "MVIT.DROPPATH_RATE", "0.2",
                               "SOLVER.OPTIMIZING_METHOD", "adamw", "SOLVER.WEIGHT_DECAY", "0.5"])
    model = build_model(cfg)
    bn = model.head.bn
    assert isinstance(bn, torch.nn.BatchNorm1d) and bn.weight is None and bn.bias is None
    assert sorted(n for n, p in model.named_parameters() if p.requires_grad) == [
        "head.projection.bias", "head.projection.weight"
    ]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    step = TrainStep(model, build_optimizer(cfg, model), ClassificationObjective(build_loss("cross_entropy"), 3),
                     torch.device("cpu"))
    step({"clip": torch.randn(4, 3, 8, 32, 32), "label": torch.tensor([0, 1, 2, 0])})
    assert not model.blocks[0].training and model.head.training
    after = model.state_dict()
    changed = sorted(k for k in before if not torch.equal(before[k], after[k]))
    assert changed == [
        "head.bn.num_batches_tracked", "head.bn.running_mean", "head.bn.running_var",
        "head.projection.bias", "head.projection.weight",
    ]
