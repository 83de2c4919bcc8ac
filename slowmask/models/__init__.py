"""Models: MViTv2 / ViT classifiers and masked-pretraining compositions (MaskFeat,
SimMIM, MAE, VideoMAE).

`build_model(cfg)` builds the model MODEL.MODEL_NAME names from MODEL_REGISTRY;
the modules themselves take plain arguments and can be built without a config.
Importing this package registers the "teacher" target (teacher.py), which needs a model
and a checkpoint's weights (slowmask/checkpoint).
"""

from .attention import MultiScaleAttention
from .block import BlockOptions, MultiScaleBlock
from .build import MODEL_REGISTRY, build_model, trunk_args
from .decoder_head import DecoderPredictionHead
from .layout import BlockLayout, mvit_layout
from .losses import LOSS_REGISTRY, build_loss
from .mae import MAEEncoder
from .mvit import MaskFeatEncoder, MViT, MViTTrunk, SeparatePredictionHead, TransformerBasicHead
from .pretrainer import MaskedPretrainer
from .teacher import FrozenTeacherTarget, TeacherEncoder, build_teacher

__all__ = [
    "BlockLayout",
    "BlockOptions",
    "DecoderPredictionHead",
    "FrozenTeacherTarget",
    "LOSS_REGISTRY",
    "MAEEncoder",
    "MODEL_REGISTRY",
    "MViT",
    "MViTTrunk",
    "MaskFeatEncoder",
    "MaskedPretrainer",
    "MultiScaleAttention",
    "MultiScaleBlock",
    "SeparatePredictionHead",
    "TeacherEncoder",
    "TransformerBasicHead",
    "build_loss",
    "build_model",
    "build_teacher",
    "mvit_layout",
    "trunk_args",
]
