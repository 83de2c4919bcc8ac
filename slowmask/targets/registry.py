from slowmask.utils.registry import Registry

TARGET_REGISTRY = Registry("TARGET")
TARGET_REGISTRY.__doc__ = """Pretraining targets, by the name MASK.TARGET gives.

A registered class is an nn.Module built as `cls.from_config(cfg)`; called as
`target(clip, grid)` with the normalized clip (B, 3, T, H, W) and the prediction
grid (t, h, w), it returns (B, t*h*w, D) target vectors in (t, h, w) order,
without gradient. `target.dim(patch)` gives D for a prediction token covering
`patch` = (frames, height, width) input pixels (used to size the prediction head).
"""
