"""Every pretraining recipe of configs/demo/ trains its tiny model: a few optimizer steps
on one synthetic batch with the recipe's own masks bring the loss down."""

import glob
import os

import pytest
import torch

from slowmask.config import load_config
from slowmask.methods import build_model
from recipe_batches import smooth_batch

DEMO_CONFIGS = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "demo")
# Distillation recipes (MASK.TARGET teacher) need their teacher's checkpoint:
# tests/engine/test_teacher.py trains them.
RECIPES = sorted(
    p for p in glob.glob(os.path.join(DEMO_CONFIGS, "*_PT.yaml")) if load_config(p).MASK.TARGET != "teacher"
)
STEPS = 8
# Recipes known not to learn yet, with the reason (a strict xfail: one that starts to learn fails here).
NOT_LEARNING = {
    "ViT_tiny_VJEPA_PT.yaml": "V-JEPA's 1-block rotary predictor gives every masked token of a clip the same "
    "prediction at this size, so the L1 loss stays at the layer-normed target's floor (projects/vjepa2, README's demo)",
}


def recipe_param(path: str):
    name = os.path.basename(path)
    marks = [pytest.mark.xfail(strict=True, reason=NOT_LEARNING[name])] if name in NOT_LEARNING else []
    return pytest.param(path, id=name, marks=marks)


def test_every_method_has_a_demo_recipe():
    names = {os.path.basename(path) for path in RECIPES}
    for recipe in ("MViT_tiny_MaskFeat_PT", "ViT_tiny_MAE_PT", "ViT_tiny_VideoMAE_PT", "ViT_tiny_image_MaskFeat_PT",
                   "ViT_tiny_image_MAE_PT", "ViT_tiny_image_SimMIM_PT"):
        assert recipe + ".yaml" in names


@pytest.mark.parametrize("path", [recipe_param(path) for path in RECIPES])
def test_recipe_trains_with_falling_loss(path):
    cfg = load_config(path)
    torch.manual_seed(0)
    model = build_model(cfg).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    clips, masks = smooth_batch(cfg)
    losses = []
    for _ in range(STEPS):
        loss = model(clips, masks)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.97 * losses[0], losses
