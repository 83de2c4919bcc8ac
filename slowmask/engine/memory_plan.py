"""The memory plan of a training run: what one process holds on its device at the peak of a
step, before the run starts, for DDP (TRAIN.SHARDING "none": every process holds the whole
model) and FSDP ("fsdp": parameters, gradients and optimizer state divided over the
processes, one block gathered at a time).

Per process, in bytes:

- parameters: 4 a parameter (float32; mixed precision casts copies, the weights stay float32,
  so there is no separate float32 master copy);
- gradients: 4 a trainable parameter;
- optimizer state: AdamW / Adam 8 a trainable parameter (two float32 moments), SGD with
  momentum 4;
- under autocast, the 16-bit copies of the weights the forward pass casts and keeps for the
  backward pass: 2 a block parameter;
- activations: what autograd keeps of every block pass, at the batch per process. Per token,
  a ViT block of width D, MLP width H and `heads` heads keeps (counted with saved-tensor
  hooks on models/layers/block.py, re-counted in tests/engine/test_memory_plan.py)
  in float32  8 D + 2 H + heads + 4 values of 4 bytes: its input and the second residual
  (the LayerNorms' inputs), q, k and v (3 D), the inputs of the three linear maps (3 D), the
  MLP's hidden layer before and after the GELU (2 H), the attention's log-sum-exp per head
  and the LayerNorms' means and deviations; under autocast (16-bit) the 6 D + 2 H of the
  matrix products in 2 bytes, the rest in float32. Fused attention (SDPA) keeps no
  tokens x tokens matrix; the plain path adds heads x tokens of 4 bytes a token (the
  softmax). With activation checkpointing (MODEL.ACT_CHECKPOINT) a block keeps only its
  input (D values of 4 bytes), and one block's full activations are rebuilt at a time;
- backward workspace: the gradients of one block's intermediate values, as large as that
  block's activations (the largest block pass);
- under "none" on several processes, DDP's gradient buckets: another 4 a trainable parameter;
- under "fsdp", the gathered blocks: two blocks' parameters (the one computing and the one
  prefetched) in the compute precision, and one block's unsharded gradients;
- the batch's clips and masks, and the target's working memory (HOG's gradients and
  histograms, a teacher's activations), which it takes while every block's activations
  are kept: the peak of the tensors alive during the target of one clip, counted when the
  plan runs the model (`LiveTensorBytes`), times the batch.

The token counts come from running the model: every block pass of one step (the context and
target encoders, decoders, predictors a method runs, each with its own tokens) is recorded
by a forward hook on a copy of the model at the real input size but a width of 8 a head
(the counts do not depend on the width), and priced at the real widths read from the
model built on the meta device, so a 1 B-parameter recipe is planned without its weights.
The plan adds the gradients to the activations, as gradient accumulation keeps them; a
step that sets them to None before its forward pass peaks up to that much lower.
"""

import dataclasses
import math
import weakref
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from fvcore.common.config import CfgNode
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from slowmask.data.build import clips_per_video
from slowmask.geometry import world_size
from slowmask.masking import build_mask_generator
from slowmask.methods import build_model
from slowmask.models.decoder_head import DECODER_HEAD_DIM
from slowmask.models.layers.block import MultiScaleBlock

GIB = 1024**3
# Optimizer state in bytes per trainable parameter (float32 moments), by SOLVER.OPTIMIZING_METHOD.
OPTIMIZER_STATE_BYTES = {"adamw": 8, "adam": 8, "sgd": 4}
# Bytes per parameter and per activation value of the compute precision.
FLOAT32, HALF = 4, 2
# The CUDA context, cuDNN / cuBLAS workspaces and the caching allocator's slack, kept free
# when finding the largest batch that fits.
DEVICE_RESERVE_BYTES = 2 * GIB
# Head width of the shrunk copy that counts the tokens of every block pass.
COUNTING_HEAD_WIDTH = 8


@dataclasses.dataclass(frozen=True)
class BlockPass:
    """One block run in a step: its module name, tokens per clip, widths, heads,
    parameters, whether autograd keeps its activations (False under no_grad: a target
    encoder), and whether its attention is fused (no tokens x tokens matrix kept)."""

    name: str
    tokens: int
    width: int
    hidden: int
    heads: int
    params: int
    keeps_activations: bool = True
    fused_attention: bool = True


def block_activation_bytes(block: BlockPass, autocast: bool, checkpointed: bool) -> int:
    """Bytes autograd keeps for one clip's pass through `block` (module docstring)."""
    if not block.keeps_activations:
        return 0
    d, h = block.width, block.hidden
    if checkpointed:
        per_token = FLOAT32 * d
    elif autocast:
        per_token = HALF * (6 * d + 2 * h) + FLOAT32 * (2 * d + block.heads + 4)
    else:
        per_token = FLOAT32 * (8 * d + 2 * h + block.heads + 4)
    if not block.fused_attention and not checkpointed:
        per_token += FLOAT32 * block.heads * block.tokens
    return block.tokens * per_token


@dataclasses.dataclass(frozen=True)
class MemoryPlan:
    """Bytes one process holds at the peak of a training step (module docstring)."""

    sharding: str
    world_size: int
    batch: int
    parameters: int
    gradients: int
    optimizer: int
    weight_copies: int
    buckets: int
    gathered: int
    activations: int
    workspace: int
    inputs: int
    target: int

    @property
    def total(self) -> int:
        return sum(getattr(self, field) for field in PLAN_FIELDS)


PLAN_FIELDS = (
    "parameters", "gradients", "optimizer", "weight_copies", "buckets", "gathered", "activations", "workspace",
    "inputs", "target",
)


@dataclasses.dataclass(frozen=True)
class TrainingShape:
    """What the plan needs of a run besides its block passes: parameters (all, trainable),
    optimizer state bytes per trainable parameter, autocast, activation checkpointing,
    the bytes of one clip with its mask, and the target's working memory for one clip."""

    params: int
    trainable: int
    optimizer_bytes: int
    autocast: bool
    checkpointed: bool
    clip_bytes: int = 0
    target_bytes: int = 0


def plan_memory(
    passes: Sequence[BlockPass], shape: TrainingShape, batch: int, sharding: str = "none", world_size: int = 1
) -> MemoryPlan:
    """The plan at `batch` clips per process under `sharding` ("none" or "fsdp")."""
    if sharding not in ("none", "fsdp"):
        raise ValueError(f'sharding must be "none" or "fsdp", got {sharding!r}')
    shards = world_size if sharding == "fsdp" else 1
    kept = [block_activation_bytes(p, shape.autocast, shape.checkpointed) for p in passes]
    full = [block_activation_bytes(p, shape.autocast, False) for p in passes]
    largest_pass = max(full, default=0)
    # Checkpointing rebuilds one block's activations at a time in the backward pass.
    activations = sum(kept) + (largest_pass if shape.checkpointed else 0)
    block_params = {p.name: p.params for p in passes}
    compute_bytes = HALF if shape.autocast else FLOAT32
    largest_block = max(block_params.values(), default=0)
    return MemoryPlan(
        sharding=sharding,
        world_size=world_size,
        batch=batch,
        parameters=math.ceil(FLOAT32 * shape.params / shards),
        gradients=math.ceil(FLOAT32 * shape.trainable / shards),
        optimizer=math.ceil(shape.optimizer_bytes * shape.trainable / shards),
        weight_copies=HALF * sum(block_params.values()) if shape.autocast and sharding == "none" else 0,
        buckets=FLOAT32 * shape.trainable if sharding == "none" and world_size > 1 else 0,
        gathered=3 * compute_bytes * largest_block if sharding == "fsdp" else 0,
        activations=batch * activations,
        workspace=batch * largest_pass,
        inputs=batch * shape.clip_bytes,
        target=batch * shape.target_bytes,
    )


def largest_batch(
    passes: Sequence[BlockPass],
    shape: TrainingShape,
    device_bytes: int,
    sharding: str = "none",
    world_size: int = 1,
    reserve: int = DEVICE_RESERVE_BYTES,
) -> int:
    """The most clips per process whose plan fits `device_bytes` less `reserve` (0: none)."""
    fixed = plan_memory(passes, shape, 0, sharding, world_size).total
    per_clip = plan_memory(passes, shape, 1, sharding, world_size).total - fixed
    room = device_bytes - reserve - fixed
    return max(0, room // per_clip) if per_clip > 0 else 0


def training_shape(cfg: CfgNode, model: nn.Module, target_bytes: int = 0) -> TrainingShape:
    """The run's parameters (of `model`, as built) and training choices."""
    method = cfg.SOLVER.OPTIMIZING_METHOD
    if method not in OPTIMIZER_STATE_BYTES:
        raise ValueError(
            f"SOLVER.OPTIMIZING_METHOD {method!r} has no memory plan; use one of {sorted(OPTIMIZER_STATE_BYTES)}"
        )
    optimizer_bytes = 0 if method == "sgd" and cfg.SOLVER.MOMENTUM == 0 else OPTIMIZER_STATE_BYTES[method]
    size = cfg.DATA.TRAIN_CROP_SIZE
    clip_values = cfg.DATA.INPUT_CHANNEL_NUM[0] * cfg.DATA.NUM_FRAMES * size * size
    return TrainingShape(
        params=sum(p.numel() for p in model.parameters()),
        trainable=sum(p.numel() for p in model.parameters() if p.requires_grad),
        optimizer_bytes=optimizer_bytes,
        autocast=bool(cfg.TRAIN.MIXED_PRECISION),
        checkpointed=bool(cfg.MODEL.ACT_CHECKPOINT),
        clip_bytes=FLOAT32 * clip_values + math.prod(cfg.AUG.MASK_WINDOW_SIZE),
        target_bytes=target_bytes,
    )


class LiveTensorBytes(TorchDispatchMode):
    """While active: the bytes of the tensor storages its operations created that are still
    alive (`live`), and their most (`peak`)."""

    def __init__(self) -> None:
        super().__init__()
        self.live = self.peak = 0
        self._sizes: Dict[int, int] = {}

    def _freed(self, key: int) -> None:
        self.live -= self._sizes.pop(key, 0)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Optional[dict] = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for tensor in tree_flatten(out)[0]:
            if not isinstance(tensor, torch.Tensor):
                continue
            storage = tensor.untyped_storage()
            key = storage.data_ptr()
            if key and key not in self._sizes:
                self._sizes[key] = storage.nbytes()
                self.live += storage.nbytes()
                self.peak = max(self.peak, self.live)
                weakref.finalize(storage, self._freed, key)
        return out


def counting_config(cfg: CfgNode) -> CfgNode:
    """`cfg` with every width at COUNTING_HEAD_WIDTH a head (the encoder) or one decoder
    head: the same blocks on the same tokens, cheap to run at the real input size."""
    small = cfg.clone()
    small.defrost()
    small.MVIT.EMBED_DIM = small.MVIT.NUM_HEADS * COUNTING_HEAD_WIDTH
    small.MASK.DECODER_EMBED_DIM = DECODER_HEAD_DIM
    small.freeze()
    return small


def record_block_passes(model: nn.Module, cfg: CfgNode) -> Tuple[List[Tuple[str, int, bool]], int]:
    """(module name, tokens per clip, grad enabled) of every block pass of one training
    forward of `model` on one clip of zeros and a mask drawn as the loader draws it, and
    the peak bytes of the tensors its `target` module (when it has one) holds at once."""
    calls: List[Tuple[str, int, bool]] = []
    names: Dict[nn.Module, str] = {m: n for n, m in model.named_modules() if isinstance(m, MultiScaleBlock)}

    def hook(module: nn.Module, inputs: Tuple[torch.Tensor, ...]) -> None:
        calls.append((names[module], int(inputs[0].shape[1]), torch.is_grad_enabled()))

    handles = [module.register_forward_pre_hook(hook) for module in names]
    target, counter = getattr(model, "target", None), LiveTensorBytes()
    if isinstance(target, nn.Module):
        # A pre-hook's return value would replace the target's inputs: these return None.
        def count_from(*_: Any) -> None:
            counter.__enter__()

        def count_until(*_: Any) -> None:
            counter.__exit__(None, None, None)

        handles += [target.register_forward_pre_hook(count_from), target.register_forward_hook(count_until)]
    size = cfg.DATA.TRAIN_CROP_SIZE
    clip = torch.zeros(1, cfg.DATA.INPUT_CHANNEL_NUM[0], cfg.DATA.NUM_FRAMES, size, size)
    generator = build_mask_generator(cfg)
    try:
        # A method may draw from the global generator (VideoMAE V2's decoder mask): the run's stream is kept.
        with torch.random.fork_rng():
            model.train()
            if generator is None:
                model(clip)
            else:
                model(clip, generator(torch.Generator().manual_seed(cfg.RNG_SEED)).unsqueeze(0))
    finally:
        for handle in handles:
            handle.remove()
    return calls, counter.peak


def block_passes(cfg: CfgNode) -> Tuple[List[BlockPass], TrainingShape]:
    """The block passes of one training step of the model `cfg` builds, priced at its real
    widths (built on the meta device), and its TrainingShape."""
    with torch.device("meta"):
        model = build_model(cfg)
    blocks = {name: m for name, m in model.named_modules() if isinstance(m, MultiScaleBlock)}
    calls, target_bytes = record_block_passes(build_model(counting_config(cfg)), cfg)
    passes = []
    for name, tokens, keeps in calls:
        block = blocks[name]
        passes.append(
            BlockPass(
                name=name,
                tokens=tokens,
                width=block.dim,
                hidden=block.mlp.fc1.out_features,
                heads=block.attn.num_heads,
                params=sum(p.numel() for p in block.parameters()),
                keeps_activations=keeps,
                fused_attention=block.attn.use_sdpa,
            )
        )
    return passes, training_shape(cfg, model, target_bytes)


def plan_lines(plans: Sequence[MemoryPlan], largest: Sequence[int], device_gib: float) -> List[str]:
    """A table: one column per plan, one row per part, GiB per process."""
    header = [f"{p.sharding} x{p.world_size}" for p in plans]
    lines = [f"{'per process (GiB)':<28}" + "".join(f"{h:>14}" for h in header)]
    labels = {
        "parameters": "parameters (fp32)",
        "gradients": "gradients (fp32)",
        "optimizer": "optimizer state",
        "weight_copies": "16-bit weight copies",
        "buckets": "DDP gradient buckets",
        "gathered": "gathered blocks (fsdp)",
        "activations": f"activations (batch {plans[0].batch})" if plans else "activations",
        "workspace": "backward workspace",
        "inputs": "clips and masks",
        "target": "target's working memory",
    }
    for field in PLAN_FIELDS:
        lines.append(f"{labels[field]:<28}" + "".join(f"{getattr(p, field) / GIB:>14.2f}" for p in plans))
    lines.append(f"{'total':<28}" + "".join(f"{p.total / GIB:>14.2f}" for p in plans))
    lines.append(f"{f'largest batch in {device_gib:g} GiB':<28}" + "".join(f"{n:>14d}" for n in largest))
    return lines


def clips_per_process(cfg: CfgNode, processes: int) -> int:
    """Clips of a training batch in one process: TRAIN.BATCH_SIZE videos over `processes`,
    each giving clips_per_video clips (AUG.NUM_SAMPLE, DATA.TRAIN_CROP_NUM_*)."""
    clips = clips_per_video(cfg, "train")
    return max(1, cfg.TRAIN.BATCH_SIZE // processes) * clips["num_samples"] * clips["crops_per_window"]


def run_sharding(cfg: CfgNode) -> str:
    """TRAIN.SHARDING where the config has the key (the sharding feature adds it), else "none"."""
    return str(getattr(cfg.TRAIN, "SHARDING", "none"))


def visible_gpu_bytes() -> Optional[int]:
    """Memory of the first visible CUDA device, or None without one."""
    if not torch.cuda.is_available():
        return None
    return int(torch.cuda.get_device_properties(0).total_memory)


def memory_warning(cfg: CfgNode) -> Optional[str]:
    """On a GPU run, the WARNING to log when the plan of TRAIN.BATCH_SIZE per job exceeds
    the visible GPU's memory (with the largest batch that fits), else None."""
    device_bytes = visible_gpu_bytes() if cfg.NUM_GPUS > 0 and cfg.TRAIN.ENABLE else None
    if device_bytes is None:
        return None
    processes = world_size(cfg.NUM_GPUS, cfg.NUM_SHARDS)
    batch = clips_per_process(cfg, processes)
    sharding = run_sharding(cfg)
    # hsdp shards inside a machine (its NUM_GPUS processes) and replicates across machines.
    shards = max(1, cfg.NUM_GPUS) if sharding == "hsdp" else processes
    sharding = "none" if sharding == "none" else "fsdp"
    passes, shape = block_passes(cfg)
    plan = plan_memory(passes, shape, batch, sharding, shards)
    if plan.total <= device_bytes:
        return None
    fits = largest_batch(passes, shape, device_bytes, sharding, shards)
    return (
        f"the memory plan needs {plan.total / GIB:.1f} GiB per process at {batch} clips per process "
        f"(TRAIN.BATCH_SIZE {cfg.TRAIN.BATCH_SIZE} videos over {processes}), the GPU has {device_bytes / GIB:.1f} GiB: "
        f"at most {fits} clips per process fit; lower TRAIN.BATCH_SIZE, set MODEL.ACT_CHECKPOINT True or shard "
        "(TRAIN.SHARDING fsdp); tools/model_info.py --memory shows the plan"
    )

