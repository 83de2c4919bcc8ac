from slowmask.utils.registry import Registry

MODEL_REGISTRY = Registry("MODEL")
MODEL_REGISTRY.__doc__ = """Models, by the name MODEL.MODEL_NAME gives.

A registered class or function is called as `builder(cfg)` and returns an
nn.Module: a pretraining model called as `model(x, mask)` returning
{"pred", "target", "loss"}, or a classifier called as `model(x)` returning logits.
"""
