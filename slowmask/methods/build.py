"""Building the model a config names: the METHOD registry, the one translation of
PySlowFast's model names and MASK.* flags into a method, and `build_model`.

MODEL.MODEL_NAME names either a method (an entry of METHOD_REGISTRY: "MaskFeat",
"MAE", a user's own), an architecture (MODEL_REGISTRY: the "MViT" classifier), or one of
PySlowFast's pretraining models, which `method_name` translates:

| MODEL.MODEL_NAME                  | MASK.*                        | method        |
|-----------------------------------|-------------------------------|---------------|
| "MaskMViT"                        | TARGET "teacher"              | "MaskDistill" |
| "MaskMViT"                        | TARGET "pixel" (PRED_HOG off) | "SimMIM"      |
| "MaskMViT"                        | any other TARGET ("hog")      | "MaskFeat"    |
| "MAE", or "MaskMViT" with MAE_ON  | DECODER_MASK_TYPE set         | "VideoMAEv2"  |
| "MAE", or "MaskMViT" with MAE_ON  | TARGET "teacher"              | "MVD"         |
| "MAE", or "MaskMViT" with MAE_ON  | otherwise                     | "MAE"         |
"""

import logging

from fvcore.common.config import CfgNode
from torch import nn

from slowmask.models import MODEL_REGISTRY
from slowmask.targets.build import target_name
from slowmask.utils.registry import Registry

logger = logging.getLogger(__name__)

METHOD_REGISTRY = Registry("METHOD", "method")
METHOD_REGISTRY.__doc__ = """Pretraining methods, by the name MODEL.MODEL_NAME gives (or the
one `method_name` translates PySlowFast's names into).

Every entry is an nn.Module class built as `METHOD_REGISTRY.build(name, cfg)`, i.e.
`cls.from_config(cfg)` (no context); called as `model(x (B, 3, T, H, W), mask (B, t, h, w)
bool, True = masked)` it returns {"pred", "target", "loss"}. The shared composition is
`MaskedPretrainer` (pretrainer.py); a method builds its parts and says in its module
what the encoder sees, what the decoder or predictor sees, the target, the loss and
what the training step must do after an optimizer update.
"""

# PySlowFast's MODEL.MODEL_NAME of masked pretraining: a model class that picks the method
# by flags (PySlowFast's models/masked.py). "MaskMViT" is dense unless MASK.MAE_ON.
PYSLOWFAST_DENSE = "MaskMViT"
PYSLOWFAST_SPARSE = "MAE"


def method_name(cfg: CfgNode) -> str:
    """The METHOD registry name of the config's model: MODEL.MODEL_NAME itself, or for
    PySlowFast's "MaskMViT" / "MAE" the method its MASK.* keys pick (module docstring).
    An architecture's name ("MViT") comes back unchanged."""
    name = cfg.MODEL.MODEL_NAME
    if name not in (PYSLOWFAST_DENSE, PYSLOWFAST_SPARSE):
        return name
    target = target_name(cfg)
    if name == PYSLOWFAST_SPARSE or cfg.MASK.MAE_ON:
        if cfg.MASK.DECODER_MASK_TYPE:
            return "VideoMAEv2"
        return "MVD" if target == "teacher" else "MAE"
    if target == "teacher":
        return "MaskDistill"
    return "SimMIM" if target == "pixel" else "MaskFeat"


def build_model(cfg: CfgNode) -> nn.Module:
    """The model MODEL.MODEL_NAME names: a method of METHOD_REGISTRY (after
    `method_name`), else an architecture of MODEL_REGISTRY; built on the CPU, or on the
    current default device (e.g. inside `with torch.device("meta")`)."""
    name = method_name(cfg)
    if name in METHOD_REGISTRY:
        model = METHOD_REGISTRY.build(name, cfg)
    else:
        methods = ", ".join(repr(known) for known in METHOD_REGISTRY.names())
        model = MODEL_REGISTRY.build(name, cfg, "MODEL.MODEL_NAME", f"; or a method: {methods}; or PySlowFast's {PYSLOWFAST_DENSE!r}")
    built = name if type(model).__name__ == name else f"{name} ({type(model).__name__})"
    logger.info("built %s with %d parameters", built, sum(p.numel() for p in model.parameters()))
    return model
