from slowmask.utils.registry import Registry

MASK_REGISTRY = Registry("MASK")
MASK_REGISTRY.__doc__ = """Mask generators, by the name AUG.MASK_TYPE gives.

A registered class is constructed with keyword arguments `grid` ((t, h, w), the
mask grid) and `mask_ratio` (float in (0, 1)), plus its own keywords; calling the
instance with a `torch.Generator` returns a bool tensor of shape (t, h, w),
True = masked.
"""
