"""How the processes of a job hold the model (TRAIN.SHARDING).

- "none": every process holds the whole model, its gradients and the optimizer's state;
  DistributedDataParallel averages the gradients (engine/train.py).
- "fsdp": PyTorch's FSDP2 (`torch.distributed.fsdp.fully_shard`) over all processes: each
  transformer block is sharded on its own, then the root takes the rest (patch embedding,
  position tables, heads). A process keeps 1/N of each parameter, of its gradient and of
  the optimizer's state; a block's whole parameters exist only while it runs (gathered
  before, freed after), as torchtitan does.
- "hsdp": FSDP2 on a 2-D mesh (NUM_SHARDS machines x processes per machine): sharded
  inside a machine, replicated across machines, so that the gathers stay on the machine's
  fast links and only gradient averages cross machines.

Mixed precision (TRAIN.MIXED_PRECISION) becomes FSDP2's policy: parameters gathered and
computed in bfloat16, gradients reduced in float32; the step's autocast still runs
(ops that need float32 keep it, and the targets that run outside autocast see float32
clips, as inputs are not cast). float16 would need a gradient scaler over sharded
gradients, which the step has not got: refused. Activation checkpointing
(MODEL.ACT_CHECKPOINT) runs inside each block, under its shard's gathered parameters.

The model's parameters become DTensors; its state_dict keeps slowmask's names, so a
sharded run's checkpoint holds the names of a `.pyth` (checkpoint/sharded.py). A frozen
teacher held outside the module tree (MVD's, methods/distillation.py) is not sharded and
not trained; a target encoder inside the model (an EMA of the encoder) is sharded like
the encoder, its blocks too, and its update (models/ema.py) runs on the local shards.
"""

import logging
from typing import List, Optional, Tuple, Type

import torch
from fvcore.common.config import CfgNode
from torch import nn
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh
from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard

from slowmask import geometry
from slowmask.models.layers.block import MultiScaleBlock

from .step import autocast_dtype

logger = logging.getLogger(__name__)

SHARDING_CHOICES = ("none", "fsdp", "hsdp")
# The modules sharded one by one before the root: the transformer blocks of every model.
SHARDED_BLOCKS: Tuple[Type[nn.Module], ...] = (MultiScaleBlock,)


def is_sharded(model: nn.Module) -> bool:
    """Whether `model` was sharded by fully_shard (its parameters are DTensors)."""
    return isinstance(model, FSDPModule)


def sharding_problems(cfg: CfgNode) -> List[str]:
    """What TRAIN.SHARDING cannot do with this config, one line each (the preflight and
    the set-up report them): an unknown choice, a job of one process, float16, hsdp on
    one machine."""
    choice = cfg.TRAIN.SHARDING
    if choice not in SHARDING_CHOICES:
        return [f"TRAIN.SHARDING is {choice!r}; supported: {', '.join(map(repr, SHARDING_CHOICES))}"]
    if choice == "none":
        return []
    problems = []
    processes = geometry.world_size(cfg.NUM_GPUS, cfg.NUM_SHARDS)
    if processes == 1:
        problems.append(f"TRAIN.SHARDING {choice} splits the model over the job's processes, and this job has one "
                        "(max(1, NUM_GPUS) x NUM_SHARDS): set TRAIN.SHARDING none, or start more processes")
    if choice == "hsdp" and cfg.NUM_SHARDS == 1:
        problems.append("TRAIN.SHARDING hsdp replicates the model across machines and NUM_SHARDS is 1: use "
                        "TRAIN.SHARDING fsdp on one machine")
    if cfg.TRAIN.MIXED_PRECISION and cfg.TRAIN.MIXED_PRECISION_DTYPE == "float16":
        problems.append(_FLOAT16)
    return problems


_FLOAT16 = ("TRAIN.SHARDING trains in bfloat16 or float32: float16 needs a gradient scaler over sharded gradients, "
            "which slowmask has not got; set TRAIN.MIXED_PRECISION_DTYPE bfloat16 (a GPU of compute capability 8.0 "
            "or more) or TRAIN.MIXED_PRECISION False")


def shard_model(model: nn.Module, mesh: DeviceMesh, mp_policy: MixedPrecisionPolicy,
                blocks: Tuple[Type[nn.Module], ...] = SHARDED_BLOCKS) -> nn.Module:
    """Shard `model` in place: each module of the `blocks` types on its own, then the
    root (fully_shard); returns it. On a 2-D `mesh` (replicate, shard): HSDP."""
    count = 0
    for module in model.modules():
        if isinstance(module, blocks):
            fully_shard(module, mesh=mesh, mp_policy=mp_policy)
            count += 1
    fully_shard(model, mesh=mesh, mp_policy=mp_policy)
    logger.info("sharded %d blocks and the root over a mesh of %s processes", count, "x".join(map(str, mesh.shape)))
    return model


def build_mesh(choice: str, num_gpus: int, num_shards: int) -> DeviceMesh:
    """The device mesh of `choice` ("fsdp": 1-D over all processes; "hsdp": (machines,
    processes per machine)), on GPUs when `num_gpus` > 0 else on CPU processes (gloo),
    where each process is one machine (engine/launch.py)."""
    per_machine = max(1, num_gpus)
    device = "cuda" if num_gpus > 0 else "cpu"
    if choice == "fsdp":
        return init_device_mesh(device, (num_shards * per_machine,), mesh_dim_names=("shard",))
    return init_device_mesh(device, (num_shards, per_machine), mesh_dim_names=("replicate", "shard"))


def precision_policy(enabled: bool, choice: str, device: torch.device) -> MixedPrecisionPolicy:
    """FSDP2's mixed precision for TRAIN.MIXED_PRECISION(_DTYPE): bfloat16 parameters and
    compute, float32 gradient reduction; inputs left as they come (see the module's
    docstring). float32 throughout when disabled; ValueError where it would be float16."""
    if not enabled:
        return MixedPrecisionPolicy()
    dtype: Optional[torch.dtype] = autocast_dtype(choice, device)
    if dtype == torch.float16:
        raise ValueError(_FLOAT16)
    return MixedPrecisionPolicy(param_dtype=dtype, reduce_dtype=torch.float32, cast_forward_inputs=False)


def build_sharded_model(cfg: CfgNode, model: nn.Module, device: torch.device) -> nn.Module:
    """`model` sharded as TRAIN.SHARDING says (not "none"), with its precision policy."""
    problems = sharding_problems(cfg)
    if problems:
        raise ValueError("; ".join(problems))
    mesh = build_mesh(cfg.TRAIN.SHARDING, cfg.NUM_GPUS, cfg.NUM_SHARDS)
    policy = precision_policy(cfg.TRAIN.MIXED_PRECISION, cfg.TRAIN.MIXED_PRECISION_DTYPE, device)
    return shard_model(model, mesh, policy)
