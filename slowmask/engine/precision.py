"""The autocast dtype of mixed-precision training, and the gradient scaler it needs.

bfloat16 keeps float32's exponent range, so gradients neither under- nor overflow and
no scaler is needed; float16 needs a GradScaler (whose state goes into checkpoints as
`scaler_state`). bfloat16 is chosen wherever the device computes it: on CPUs and on
GPUs with compute capability 8.0 or more (Ampere, Hopper).
"""

import logging
from typing import Optional, Tuple

import torch

logger = logging.getLogger(__name__)

# MIXED_PRECISION_DTYPE values -> autocast dtype ("auto" picks one per device).
DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}
PRECISION_CHOICES = ("auto", *DTYPES)


def supports_bfloat16(device: torch.device) -> bool:
    """CPUs always; CUDA devices that compute in bfloat16 natively."""
    if device.type == "cpu":
        return True
    return device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False)


def autocast_dtype(choice: str, device: torch.device) -> torch.dtype:
    """The dtype for `choice` ("auto", "bfloat16", "float16") on `device`; ValueError
    for an unknown choice or bfloat16 forced where the device lacks it."""
    if choice not in PRECISION_CHOICES:
        raise ValueError(f"mixed-precision dtype {choice!r}; supported: {', '.join(map(repr, PRECISION_CHOICES))}")
    if choice == "auto":
        return torch.bfloat16 if supports_bfloat16(device) else torch.float16
    if choice == "bfloat16" and not supports_bfloat16(device):
        raise ValueError(f"bfloat16 is not supported on {device}; use float16 (with a gradient scaler) or auto")
    return DTYPES[choice]


def mixed_precision(
    enabled: bool, choice: str, device: torch.device
) -> Tuple[Optional[torch.dtype], Optional[torch.amp.GradScaler]]:
    """(autocast dtype, GradScaler) for a training step: (None, None) when disabled;
    a scaler only for float16."""
    if not enabled:
        return None, None
    dtype = autocast_dtype(choice, device)
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
    logger.info("mixed precision: %s autocast on %s%s", dtype, device, " with a gradient scaler" if scaler else "")
    return dtype, scaler
