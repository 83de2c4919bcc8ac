"""A synthetic training batch for a recipe, the one the recipe tests train on."""

import torch

from slowmask.masking import build_mask_generator


def smooth_batch(cfg, batch_size: int = 4):
    """Smooth random clips (B, 3, T, S, S) at the recipe's size and its masks (B, t, h, w)."""
    generator = torch.Generator().manual_seed(0)
    size = cfg.DATA.TRAIN_CROP_SIZE
    coarse = torch.randn(batch_size, 3, cfg.DATA.NUM_FRAMES, size // 8, size // 8, generator=generator)
    clips = torch.nn.functional.interpolate(coarse, size=(cfg.DATA.NUM_FRAMES, size, size), mode="trilinear")
    masks = build_mask_generator(cfg)
    return clips, torch.stack([masks(torch.Generator().manual_seed(i)) for i in range(batch_size)])
