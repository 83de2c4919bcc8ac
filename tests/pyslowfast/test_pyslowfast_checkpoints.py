"""Checkpoints both ways: PySlowFast's .pyth (model_state / optimizer_state / epoch /
cfg, its parameter names) loads strictly here, and ours has PySlowFast's names.

tests/pyslowfast/states/ lists the state-dict names and shapes of PySlowFast's models
for two recipes, as its code builds them.
"""

import os
from typing import Dict, Tuple

import pytest
import torch

from slowmask.config import load_config
from slowmask import checkpoint
from slowmask.engine import resume
from slowmask.methods import build_model

HERE = os.path.dirname(os.path.abspath(__file__))
PYSLOWFAST_HOG_BUFFERS = {"hogs.0.weight_x", "hogs.0.weight_y"}  # its fixed HOG filters


def pyslowfast_state(name: str) -> Dict[str, Tuple[int, ...]]:
    with open(os.path.join(HERE, "states", name + ".txt")) as f:
        rows = [line.split(" ") for line in f.read().splitlines() if line and not line.startswith("#")]
    return {key: tuple(int(s) for s in shape.split(",") if s) for key, shape in rows}


def build(name: str) -> torch.nn.Module:
    return build_model(load_config(os.path.join(HERE, "configs", name + ".yaml")))


def shapes(state) -> Dict[str, Tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in state.items()}


def random_state(expected: Dict[str, Tuple[int, ...]]) -> Dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {key: torch.randn(shape, generator=generator) for key, shape in expected.items()}


@pytest.mark.parametrize("name", ["Kinetics_MVITv2_S_16x4", "k400_MVITv2_S_16x4_MaskFeat_PT"])
def test_our_names_and_shapes_equal_pyslowfasts(name):
    with torch.device("meta"):
        ours = shapes(build(name).state_dict())
    theirs = pyslowfast_state(name)
    assert set(theirs) - set(ours) <= PYSLOWFAST_HOG_BUFFERS
    assert ours == {k: v for k, v in theirs.items() if k not in PYSLOWFAST_HOG_BUFFERS}


def test_a_pyslowfast_checkpoint_loads_strictly_for_testing_and_ours_reads_back_the_same(tmp_path):
    expected = pyslowfast_state("Kinetics_MVITv2_S_16x4")
    written_by_pyslowfast = {
        "model_state": random_state(expected),
        "optimizer_state": None,
        "epoch": 200,
        "cfg": "MODEL:\n  MODEL_NAME: MViT\n",
    }
    path = str(tmp_path / "MViTv2_S_16x4_k400_f302660347.pyth")
    torch.save(written_by_pyslowfast, path)
    model = build("Kinetics_MVITv2_S_16x4")
    assert resume.resume(path, model) == 200
    for key, value in model.state_dict().items():
        assert torch.equal(value, written_by_pyslowfast["model_state"][key]), key
    ours = str(tmp_path / "ours.pyth")
    checkpoint.save_checkpoint(ours, model, None, 200, "MODEL:\n  MODEL_NAME: MViT\n")
    state = torch.load(ours, weights_only=True)
    assert {"model_state", "optimizer_state", "epoch", "cfg"} <= set(state)
    assert shapes(state["model_state"]) == expected  # what PySlowFast's model of this config loads


def test_a_pyslowfast_maskfeat_checkpoint_with_its_hog_buffers_loads_strictly():
    expected = pyslowfast_state("k400_MVITv2_S_16x4_MaskFeat_PT")
    assert PYSLOWFAST_HOG_BUFFERS <= set(expected)
    model = build("k400_MVITv2_S_16x4_MaskFeat_PT")
    state = random_state(expected)
    model.load_state_dict(state, strict=True)
    assert torch.equal(model.state_dict()["pred_head.projections.0.weight"], state["pred_head.projections.0.weight"])
