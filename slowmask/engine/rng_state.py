"""The global random generators of a training process, saved in checkpoints and restored
on resume, so that dropout and drop-path draws continue as in the uninterrupted run.

Data randomness does not depend on them (items draw from generators seeded by
(seed, epoch, index), see slowmask/data/video_dataset.py); the model's stochastic layers do.
The state is kept in plain types and tensors, so `torch.load(weights_only=True)` reads it.
"""

import logging
import random
from typing import Any, Dict

import numpy as np
import torch

logger = logging.getLogger(__name__)

NUMPY_BIT_GENERATOR = "MT19937"


def capture_rng_state() -> Dict[str, Any]:
    """The states of torch's CPU generator, this process's CUDA device (when there is one),
    numpy's legacy global generator and python's `random`."""
    name, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    state: Dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng_state(state: Dict[str, Any]) -> None:
    """Set the generators to a `capture_rng_state()` result. A CUDA state met without a
    visible GPU is left out with a warning (a GPU run resumed on a CPU cannot draw the same)."""
    torch.set_rng_state(state["torch"])
    numpy = state["numpy"]
    keys = numpy["keys"].numpy().astype(np.uint32)
    np.random.set_state(
        (NUMPY_BIT_GENERATOR, keys, numpy["position"], numpy["has_gauss"], numpy["cached_gaussian"])
    )
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" not in state:
        return
    if torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
    else:
        logger.warning("the checkpoint holds a CUDA generator state but no GPU is visible; it is not restored")
