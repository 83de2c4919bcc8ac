"""The memory plan (engine/memory_plan.py): the activation factor re-counted from what
autograd keeps, the block passes a method runs, the arithmetic of none / fsdp and the
largest batch, the plan against the measured peak of CPU training steps, the preflight's
WARNING and tools/model_info.py --memory."""

import logging
import os

import pytest
import torch

from slowmask.benchmarks.memory import planned_and_measured
from slowmask.config import load_config
from slowmask.engine import memory_plan
from slowmask.engine.memory_plan import (
    GIB,
    BlockPass,
    TrainingShape,
    block_activation_bytes,
    block_passes,
    largest_batch,
    memory_warning,
    plan_memory,
)
from slowmask.methods import build_model
from slowmask.models.layers.block import BlockOptions, MultiScaleBlock

from tool_scripts import REPO, load_tool

DEMO = os.path.join(REPO, "configs", "demo")
model_info = load_tool("model_info")


def _saved_activation_bytes(block, x, autocast):
    """Bytes of the tensors autograd keeps for `block(x)`, its weights (and their
    16-bit copies) left out, each storage once."""
    weights = {p.untyped_storage().data_ptr() for p in block.parameters()}
    weight_shapes = {tuple(p.shape) for p in block.parameters()} | {tuple(p.shape)[::-1] for p in block.parameters()}
    kept = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        weight_copy = tensor.dtype == torch.bfloat16 and tuple(tensor.shape) in weight_shapes
        if storage.data_ptr() not in weights and not weight_copy:
            kept[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            block(x, (2, 5, 5))
    return sum(kept.values())


@pytest.mark.parametrize("dim, heads, mlp_ratio", [(64, 2, 4.0), (96, 3, 2.0)])
@pytest.mark.parametrize("autocast", [False, True])
def test_the_activation_factor_is_what_autograd_keeps(dim, heads, mlp_ratio, autocast):
    block = MultiScaleBlock(dim, dim, heads, (2, 5, 5), has_cls_embed=False, options=BlockOptions(mlp_ratio=mlp_ratio))
    x = torch.randn(3, 50, dim, requires_grad=True)
    counted = BlockPass("b", tokens=50, width=dim, hidden=int(dim * mlp_ratio), heads=heads, params=0)
    assert _saved_activation_bytes(block, x, autocast) == 3 * block_activation_bytes(counted, autocast, False)


def test_block_passes_of_a_sparse_method_count_the_visible_and_the_decoded_tokens():
    cfg = load_config(os.path.join(DEMO, "ViT_tiny_MAE_PT.yaml"))
    passes, shape = block_passes(cfg)
    # 4x4x4 tokens, 90 % random masking: 6 visible + the class token in the encoder, all 64 + 1 in the decoder.
    assert [(p.name, p.tokens, p.width) for p in passes] == [
        ("encoder.blocks.0", 7, 64), ("encoder.blocks.1", 7, 64), ("encoder.blocks.2", 7, 64),
        ("pred_head.transforms.0.0", 65, 64),
    ]
    assert shape.trainable == sum(p.numel() for p in build_model(cfg).parameters() if p.requires_grad)


def _shape(**changes):
    base = dict(params=1000, trainable=1000, optimizer_bytes=8, autocast=False, checkpointed=False, clip_bytes=100)
    return TrainingShape(**{**base, **changes})


PASSES = [BlockPass(f"blocks.{i}", tokens=10, width=8, hidden=32, heads=2, params=200) for i in range(4)]


def test_fsdp_divides_the_model_state_and_gathers_one_block():
    none, fsdp = (plan_memory(PASSES, _shape(), 2, sharding, 4) for sharding in ("none", "fsdp"))
    assert (none.parameters, none.gradients, none.optimizer, none.buckets) == (4000, 4000, 8000, 4000)
    assert (fsdp.parameters, fsdp.gradients, fsdp.optimizer, fsdp.buckets) == (1000, 1000, 2000, 0)
    assert fsdp.gathered == 3 * 4 * 200 and none.gathered == 0
    per_pass = 10 * 4 * (8 * 8 + 2 * 32 + 2 + 4)  # 5360 bytes a clip
    assert none.activations == fsdp.activations == 2 * 4 * per_pass and none.workspace == 2 * per_pass
    assert none.inputs == 200


def test_checkpointing_keeps_block_inputs_and_rebuilds_one_block():
    plan = plan_memory(PASSES, _shape(checkpointed=True), 1)
    assert plan.activations == 4 * 10 * 4 * 8 + 10 * 4 * (8 * 8 + 2 * 32 + 2 + 4)


def test_the_largest_batch_fits_and_one_more_does_not():
    shape = _shape()
    device = 300_000
    batch = largest_batch(PASSES, shape, device, reserve=0)
    assert plan_memory(PASSES, shape, batch).total <= device < plan_memory(PASSES, shape, batch + 1).total


@pytest.mark.parametrize("recipe, extra", [("ViT_tiny_MaskFeat_PT.yaml", []), ("ViT_tiny_MAE_PT.yaml", [])])
def test_the_plan_is_within_25_percent_of_the_measured_peak_on_cpu(recipe, extra):
    # Width 192, 6 blocks: activations outweigh the clips, as in the real recipes.
    opts = ["MVIT.EMBED_DIM", "192", "MVIT.DEPTH", "6", "MVIT.NUM_HEADS", "3", "MASK.PRETRAIN_DEPTH", "[5]", *extra]
    cfg = load_config(os.path.join(DEMO, recipe), opts)
    figures = planned_and_measured(cfg, 8)
    ratio = figures["measured"] / figures["planned"]
    assert 0.75 <= ratio <= 1.25, figures


def test_the_preflight_warns_when_the_plan_exceeds_the_gpu(monkeypatch):
    cfg = load_config(os.path.join(DEMO, "ViT_tiny_MAE_PT.yaml"), ["NUM_GPUS", "1", "TRAIN.BATCH_SIZE", "64"])
    monkeypatch.setattr(memory_plan, "visible_gpu_bytes", lambda: 50 * 2**20)
    message = memory_warning(cfg)
    assert message.startswith("the memory plan needs ") and "at 64 clips per process" in message
    assert "the GPU has 0.0 GiB: at most 0 clips per process fit" in message
    monkeypatch.setattr(memory_plan, "visible_gpu_bytes", lambda: 80 * GIB)
    assert memory_warning(cfg) is None
    cpu = load_config(os.path.join(DEMO, "ViT_tiny_MAE_PT.yaml"))
    assert memory_warning(cpu) is None  # NUM_GPUS 0: no GPU to plan for


def test_model_info_prints_the_plan_for_none_and_fsdp(capsys):
    path = os.path.join(DEMO, "ViT_tiny_MAE_PT.yaml")
    passes, shape = block_passes(load_config(path))
    fit = largest_batch(passes, shape, GIB, "none", 2)
    args = ["--cfg", path, "--memory", "--world-size", "2", "--gpu-memory", "1"]
    assert model_info.main(args) == 0
    out = capsys.readouterr().out
    assert "batch: 4 clips per process (TRAIN.BATCH_SIZE 8 videos over 2 processes, 1 clips a video)" in out
    assert "none x2       fsdp x2" in out
    rows = {line[:28].strip(): line[28:].split() for line in out.splitlines() if line[:1].isalpha()}
    assert rows["DDP gradient buckets"][1] == "0.00" and rows["gathered blocks (fsdp)"][0] == "0.00"
    assert rows["largest batch in 1 GiB"][0] == str(fit) and rows["total"][0] == f"{plans_total(passes, shape):.2f}"


def plans_total(passes, shape):
    return plan_memory(passes, shape, 4, "none", 2).total / GIB


def test_model_info_refuses_a_bad_world_size(capsys, caplog):
    args = ["--cfg", os.path.join(DEMO, "ViT_tiny_MAE_PT.yaml"), "--memory", "--gpu-memory", "-1"]
    with caplog.at_level(logging.ERROR):
        assert model_info.main(args) == 2
    assert "--gpu-memory above 0, got 1 and -1.0" in capsys.readouterr().err
