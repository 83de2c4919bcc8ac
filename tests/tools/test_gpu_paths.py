"""The CUDA paths that a CPU never runs, as the first row of tools/gpu_check.py: bf16
and fp16 steps with the GradScaler through a checkpoint, the CUDA generator restored,
activation checkpointing's memory on MViTv2-S at 16x224x224, NCCL through the launch
path. Marked `gpu`: skipped without a CUDA device."""

import os
import socket

import pytest
import torch
import torch.distributed as dist

from slowmask.config import load_config
from slowmask import checkpoint
from slowmask.engine import resume
from slowmask.checkpoint import capture_rng_state, restore_rng_state
from slowmask.engine.distributed import Place
from slowmask.engine.launch import run_at
from slowmask.engine.step import TrainStep, masked_prediction_objective, mixed_precision
from slowmask.masking import build_mask_generator
from slowmask.methods import build_model

pytestmark = pytest.mark.gpu

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CUDA = torch.device("cuda")


def _demo_step(dtype_choice: str):
    cfg = load_config(os.path.join(REPO, "configs", "demo", "MViT_tiny_MaskFeat_PT.yaml"))
    torch.manual_seed(0)
    model = build_model(cfg).to(CUDA)
    dtype, scaler = mixed_precision(True, dtype_choice, CUDA)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    return TrainStep(model, optimizer, masked_prediction_objective, CUDA, autocast_dtype=dtype, scaler=scaler), cfg


def _batch(cfg, batch: int = 2):
    generator = build_mask_generator(cfg)
    clip = torch.randn(batch, 3, cfg.DATA.NUM_FRAMES, cfg.DATA.TRAIN_CROP_SIZE, cfg.DATA.TRAIN_CROP_SIZE)
    mask = torch.stack([generator(torch.Generator().manual_seed(i)) for i in range(batch)])
    return {"clip": clip.pin_memory(), "mask": mask.pin_memory()}


@pytest.mark.parametrize("dtype_choice", ["bfloat16", "float16"])
def test_mixed_precision_steps_and_the_scaler_through_a_checkpoint(dtype_choice, tmp_path):
    step, cfg = _demo_step(dtype_choice)
    rows = [step(_batch(cfg)) for _ in range(3)]
    assert all(torch.isfinite(m["loss"]) and torch.isfinite(m["grad_norm"]) for m in rows)
    assert (step.scaler is None) == (dtype_choice == "bfloat16")
    path = str(tmp_path / "c.pyth")
    checkpoint.save_checkpoint(path, step.model, step.optimizer, 0, "", step.scaler)
    restored, _ = _demo_step(dtype_choice)
    resume.resume(path, restored.model, restored.optimizer, restored.scaler)
    if step.scaler is not None:
        assert restored.scaler.state_dict() == step.scaler.state_dict()
    for (name, p), q in zip(step.model.state_dict().items(), restored.model.state_dict().values()):
        assert torch.equal(p, q), name


def test_the_cuda_generator_is_restored():
    torch.cuda.manual_seed(3)
    state = capture_rng_state()
    drawn = torch.randn(4, device=CUDA)
    torch.randn(100, device=CUDA)
    restore_rng_state(state)
    assert torch.equal(torch.randn(4, device=CUDA), drawn)


def _peak_step_bytes(act_checkpoint: bool) -> int:
    cfg = load_config(os.path.join(REPO, "configs", "k400_MViT_S_MaskFeat_PT.yaml"),
                      ["MODEL.ACT_CHECKPOINT", str(act_checkpoint)])
    torch.manual_seed(0)
    model = build_model(cfg).to(CUDA)
    batch = {k: v.to(CUDA) for k, v in _batch(cfg, 4).items()}
    torch.cuda.synchronize()
    start = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = model(batch["clip"], batch["mask"])["loss"]
    loss.backward()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - start
    del model, batch, loss
    torch.cuda.empty_cache()
    return peak


def test_activation_checkpointing_saves_most_activation_memory_on_mvitv2_s():
    plain, checkpointed = _peak_step_bytes(False), _peak_step_bytes(True)
    # Checkpointing keeps each block's input instead of its ~10 intermediate activations.
    assert checkpointed < 0.5 * plain, (checkpointed / 2**20, plain / 2**20)


def _all_reduce_job(cfg) -> None:
    assert dist.get_backend() == "nccl" and dist.get_world_size() == 1
    value = torch.full((3,), 2.0, device=CUDA)
    dist.all_reduce(value)
    assert value.tolist() == [2.0, 2.0, 2.0]


def test_nccl_on_one_process_through_the_launch_path():
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        port = probe.getsockname()[1]
    cfg = load_config(os.path.join(REPO, "configs", "demo", "MViT_tiny_MaskFeat_PT.yaml"),
                      ["NUM_GPUS", "1", "DIST_BACKEND", "nccl"])
    run_at(Place(0, 0, 1), _all_reduce_job, cfg, f"tcp://localhost:{port}")
    assert not dist.is_initialized()
