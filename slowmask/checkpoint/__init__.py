"""Checkpoints: the files a run writes and reads (files.py; safetensors_file.py, weights
without pickle), a checkpoint's weights in a model (pretrained.py: state diffs,
`load_weights`, `load_pretrained`), the folders of a sharded run (sharded.py: written by
every rank, read on any number of processes, consolidated into a file), and the fitting
of tensors written for another input geometry (geometry.py).

Below the models and the methods, above geometry/utils: a model built from another run's
weights (the distillation teacher, fine-tuning) needs no engine. Where a training run
resumes, and putting optimizer and hook states back, is the engine's (engine/resume.py).
"""

from .files import (
    BEST_NAME,
    EMA_NAME,
    CHECKPOINT_DIR,
    ZIP_MAGIC,
    CheckpointError,
    best_checkpoint_path,
    ema_checkpoint_path,
    capture_rng_state,
    check_finite,
    checkpoint_dir,
    checkpoint_path,
    damaged_member,
    epoch_checkpoints,
    last_checkpoint,
    nonfinite_tensors,
    position_in_name,
    prune_checkpoints,
    read_checkpoint,
    read_newest,
    restore_rng_state,
    save_checkpoint,
    set_aside,
    unreadable_reason,
    unwrapped,
)
from .geometry import adapt
from .safetensors_file import is_safetensors, write_safetensors_checkpoint
from .sharded import (
    consolidate_checkpoint,
    is_sharded_checkpoint,
    load_numbered_optimizer_state,
    load_sharded_checkpoint,
    read_any_checkpoint,
    read_sharded_checkpoint,
    save_sharded_checkpoint,
    sharded_model_shapes,
)
from .pretrained import (
    PRETRAINING_ONLY,
    STEM_PREFIXES,
    LoadReport,
    StateDiff,
    WeightsMismatchError,
    load_model_state,
    load_pretrained,
    load_weights,
    match_state,
    state_diff,
)

__all__ = [
    "BEST_NAME",
    "EMA_NAME",
    "CHECKPOINT_DIR",
    "PRETRAINING_ONLY",
    "STEM_PREFIXES",
    "ZIP_MAGIC",
    "CheckpointError",
    "LoadReport",
    "StateDiff",
    "WeightsMismatchError",
    "adapt",
    "best_checkpoint_path",
    "ema_checkpoint_path",
    "capture_rng_state",
    "check_finite",
    "checkpoint_dir",
    "checkpoint_path",
    "consolidate_checkpoint",
    "damaged_member",
    "epoch_checkpoints",
    "is_safetensors",
    "is_sharded_checkpoint",
    "last_checkpoint",
    "load_model_state",
    "load_numbered_optimizer_state",
    "load_pretrained",
    "load_sharded_checkpoint",
    "load_weights",
    "match_state",
    "nonfinite_tensors",
    "position_in_name",
    "prune_checkpoints",
    "read_any_checkpoint",
    "read_checkpoint",
    "read_newest",
    "read_sharded_checkpoint",
    "restore_rng_state",
    "save_checkpoint",
    "save_sharded_checkpoint",
    "set_aside",
    "sharded_model_shapes",
    "state_diff",
    "unreadable_reason",
    "unwrapped",
    "write_safetensors_checkpoint",
]
