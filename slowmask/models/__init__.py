"""Models: architectures and their layers. MViTv2 / ViT (mvit.py: the trunk, the
classifier, MaskFeat's dense encoder and heads), MAE's sparse encoder (mae.py) and
decoder (decoder_head.py), V-JEPA's encoder and predictor (jepa.py), built from the
parts in layers/; the MODEL registry of architectures (build.py) and the LOSS registry
(losses.py).

The modules take plain arguments and can be built without a config. The pretraining
methods that compose them (MaskFeat, MAE, distillation, ...) are slowmask.methods,
one layer up; `slowmask.methods.build_model(cfg)` builds any model a config names.
"""

from .build import MODEL_REGISTRY, trunk_args
from .decoder_head import DecoderPredictionHead
from .layers import BlockLayout, BlockOptions, MultiScaleAttention, MultiScaleBlock, mvit_layout
from .losses import LOSS_REGISTRY, build_loss
from .jepa import JEPAEncoder, JEPAPredictor
from .mae import MAEEncoder
from .mvit import MaskFeatEncoder, MViT, MViTTrunk, SeparatePredictionHead, TransformerBasicHead

__all__ = [
    "BlockLayout",
    "BlockOptions",
    "DecoderPredictionHead",
    "JEPAEncoder",
    "JEPAPredictor",
    "LOSS_REGISTRY",
    "MAEEncoder",
    "MODEL_REGISTRY",
    "MViT",
    "MViTTrunk",
    "MaskFeatEncoder",
    "MultiScaleAttention",
    "MultiScaleBlock",
    "SeparatePredictionHead",
    "TransformerBasicHead",
    "build_loss",
    "mvit_layout",
    "trunk_args",
]
