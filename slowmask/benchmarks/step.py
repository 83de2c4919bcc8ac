"""The step part of `tools/benchmark.py`: one MaskMViT training step (forward,
backward, AdamW), then the attention cores alone.

    python tools/benchmark.py --cfg CONFIG --what step

The step row times a whole training step with the SDPA attention against the same
model with the explicit matmul-softmax-matmul attention. The cores row times only what
differs between the two: the attention cores (`q, k, v -> softmax(q k^T + bias) v`,
forward and backward) of every block, at the shapes one forward pass of the model gives
them. Its ratio is the speedup of the part that SDPA replaces; its share of the plain
step bounds what the step as a whole can gain (a core that takes 5 % of the step can
make the step at most 1.05x faster).
"""

from typing import Callable, List, Tuple

import torch
from fvcore.common.config import CfgNode
from torch import nn

from slowmask.config import load_config
from slowmask.geometry import TokenGeometry
from slowmask.methods import build_model
from slowmask.models.layers.attention import MultiScaleAttention

from .table import row
from .timing import Timing, compare, pretraining_step

# One recorded call of an attention core: the module, then (q, k, v, q_grid, k_grid).
CoreCall = Tuple[MultiScaleAttention, tuple]


def record_core_calls(model: nn.Module, clips: torch.Tensor, masks: torch.Tensor) -> List[CoreCall]:
    """The inputs every attention core of `model` receives in one forward pass."""
    calls: List[CoreCall] = []
    modules = [m for m in model.modules() if isinstance(m, MultiScaleAttention)]
    for module in modules:
        def recording(*inputs, _module=module, _attend=module._attend_sdpa):
            calls.append((_module, tuple(x.detach() if torch.is_tensor(x) else x for x in inputs)))
            return _attend(*inputs)

        module._attend_sdpa = recording
    try:
        with torch.no_grad():
            model(clips, masks)
    finally:
        for module in modules:
            del module._attend_sdpa  # back to the class's method
    return calls


def _cores(calls: List[CoreCall], sdpa: bool) -> Callable[[], None]:
    """Forward and backward of every recorded core, through SDPA or the plain path."""

    def run() -> None:
        for module, (q, k, v, q_grid, k_grid) in calls:
            q, k, v = (x.clone().requires_grad_() for x in (q, k, v))
            attend = module._attend_sdpa if sdpa else module._attend_plain
            attend(q, k, v, q_grid, k_grid).sum().backward()

    return run


def core_timings(
    model: nn.Module, clips: torch.Tensor, masks: torch.Tensor, warmup: int, repeats: int
) -> Tuple[Timing, Timing, int]:
    """(SDPA cores' timing, plain cores' timing, number of cores) for one step's shapes."""
    calls = record_core_calls(model, clips, masks)
    fast, slow = compare(_cores(calls, sdpa=True), _cores(calls, sdpa=False), warmup, repeats)
    return fast, slow, len(calls)


def step_cfg(cfg_path: str, opts: List[str], frames: int, size: int) -> CfgNode:
    """The config at a (frames, size) clip, masks drawn on the prediction grid."""
    geometry = TokenGeometry.from_config(load_config(cfg_path, opts)).for_input((frames, size, size))
    grid = list(geometry.prediction_grid)
    extra = ["DATA.NUM_FRAMES", str(frames), "DATA.TRAIN_CROP_SIZE", str(size), "AUG.MASK_WINDOW_SIZE", str(grid)]
    return load_config(cfg_path, [*opts, *extra])


def step_rows(cfg: CfgNode, batch: int, warmup: int, repeats: int) -> List[dict]:
    """The step row (SDPA against plain attention, same weights, clips and masks) and
    the cores row, with the plain cores' share of the plain step (`core_share_of_step`)."""
    torch.manual_seed(cfg.RNG_SEED)
    model = build_model(cfg)
    plain = build_model(cfg)
    plain.load_state_dict(model.state_dict())
    for module in plain.modules():
        if isinstance(module, MultiScaleAttention):
            module.use_sdpa = False
    generator = torch.Generator().manual_seed(0)
    frames, size = cfg.DATA.NUM_FRAMES, cfg.DATA.TRAIN_CROP_SIZE
    clips = torch.randn(batch, 3, frames, size, size, generator=generator)
    masks = torch.rand(batch, *cfg.AUG.MASK_WINDOW_SIZE, generator=generator) < cfg.AUG.MASK_RATIO
    fast, slow = compare(
        pretraining_step(model, torch.optim.AdamW(model.parameters(), lr=1e-4), clips, masks),
        pretraining_step(plain, torch.optim.AdamW(plain.parameters(), lr=1e-4), clips, masks),
        warmup, repeats,
    )
    what = f"{cfg.MODEL.MODEL_NAME} train step, batch {batch}, {frames}x{size}x{size}, SDPA attention"
    fast_cores, slow_cores, cores = core_timings(model, clips, masks, warmup, repeats)
    share = slow_cores.median / slow.median
    cores_what = f"attention cores alone ({cores}, forward+backward), SDPA; plain cores = {share:.0%} of the plain step"
    return [
        row("step", what, fast, "plain matmul-softmax attention", slow, target=1.2),
        row("step", cores_what, fast_cores, "plain matmul-softmax cores", slow_cores, core_share_of_step=share),
    ]
