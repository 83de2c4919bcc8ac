"""The memory plan (engine/memory_plan.py) against the measured peak of training steps.

    python tools/model_info.py --cfg CONFIG --memory --measure-batch 8

Builds the model, its AdamW optimizer and a batch of random clips with masks drawn by the
configured generator, runs two training steps as TrainStep orders them (gradients set to
None before the forward pass) and takes the peak memory above the level before the model
was built: PyTorch's allocator on a CUDA device, the resident set size on the CPU
(timing.PeakMemory). The plan at the same batch is the estimate it is compared with.
"""

from typing import Dict

import torch
from fvcore.common.config import CfgNode

from slowmask.engine.memory_plan import block_passes, plan_memory
from slowmask.masking import build_mask_generator
from slowmask.methods import build_model

from .timing import PeakMemory

# Training steps measured: the first allocates the optimizer's state, the second runs as
# every later step does.
MEASURED_STEPS = 2


def random_batch(cfg: CfgNode, batch: int, device: torch.device) -> Dict[str, torch.Tensor]:
    """`batch` clips of normal noise at the training size and masks drawn by the configured generator."""
    size = cfg.DATA.TRAIN_CROP_SIZE
    clips = torch.randn(batch, cfg.DATA.INPUT_CHANNEL_NUM[0], cfg.DATA.NUM_FRAMES, size, size, device=device)
    generator = build_mask_generator(cfg)
    masks = torch.stack([generator(torch.Generator().manual_seed(i)) for i in range(batch)]).to(device)
    return {"clip": clips, "mask": masks}


def train_steps(cfg: CfgNode, inputs: Dict[str, torch.Tensor], steps: int, device: torch.device) -> None:
    """Build the model and AdamW, then `steps` training steps on `inputs`, as TrainStep orders them."""
    model = build_model(cfg).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.TRAIN.MIXED_PRECISION):
            loss = model(inputs["clip"], inputs["mask"])["loss"]
        loss.backward()
        optimizer.step()


def measured_peak(cfg: CfgNode, batch: int, device: torch.device = torch.device("cpu")) -> int:
    """Peak bytes above the level before the model was built, over MEASURED_STEPS steps.
    A step at batch 1 runs first, unmeasured: the first call of each kernel maps its code
    and sets up its library's workspace, which no plan of the training holds."""
    train_steps(cfg, random_batch(cfg, 1, device), 1, device)
    with PeakMemory(device) as peak:
        train_steps(cfg, random_batch(cfg, batch, device), MEASURED_STEPS, device)
    if peak.peak is None:
        raise RuntimeError("the peak memory cannot be measured here (no /proc on this system)")
    return peak.peak


def planned_and_measured(cfg: CfgNode, batch: int, device: torch.device = torch.device("cpu")) -> Dict[str, int]:
    """{"planned": the plan's total at `batch` on one process, "measured": measured_peak}."""
    passes, shape = block_passes(cfg)
    planned = plan_memory(passes, shape, batch).total
    return {"planned": planned, "measured": measured_peak(cfg, batch, device)}
