"""Pretraining methods: each one a composition of parts (an encoder, a decoder or head, a
target, a loss) in a module that reads top to bottom, like MAE's models_mae.py: what the
encoder sees, what the decoder or predictor sees, the target, the loss, and what the
training step must do after an optimizer update.

| module          | METHOD_REGISTRY names  | composition |
|-----------------|------------------------|-------------|
| maskfeat.py     | "MaskFeat"             | dense encoder with mask token + linear head (or MAE's decoder) + HOG + masked MSE |
| simmim.py       | "SimMIM"               | MaskFeat's parts + raw pixels + L1 |
| mae.py          | "MAE"                  | sparse encoder + transformer decoder + normalized pixels + MSE (VideoMAE) |
| videomae_v2.py  | "VideoMAEv2"           | MAE's parts + a decoder mask (dual masking) |
| distillation.py | "MVD", "MaskDistill"   | MAE's or MaskFeat's parts + a frozen teacher's features |
| vjepa.py        | "VJEPA"                | context encoder + narrow predictor + EMA target encoder's latents + L1, multi-block mask sets |

`pretrainer.py` holds the forward pass they share (`MaskedPretrainer`); `build.py` the
METHOD registry, the one translation of PySlowFast's "MaskMViT" / "MAE" and MASK.* flags
into a method, and `build_model(cfg)`, which builds a method or an architecture of
slowmask.models. The parts themselves live below: architectures in slowmask.models,
targets in slowmask.targets, masks in slowmask.masking.

OmniMAE (Girdhar et al., 2023) is not a method here: it is MAE trained on images and
videos together, a mixing of datasets (data/datasets/mixed.py, TRAIN.DATASET "mixed"); its
position tables follow each input's grid (models/layers/position.py).

Importing this package registers every method and the "teacher" target.
"""

from .build import METHOD_REGISTRY, build_model, method_name
from .distillation import (
    FrozenTeacherTarget,
    MaskDistill,
    MVD,
    TeacherEncoder,
    TeacherFeatureTarget,
    build_teacher,
    resample_tokens,
)
from .mae import MAE
from .maskfeat import MaskFeat
from .pretrainer import LOSS_TOKENS, MaskedPretrainer
from .simmim import SimMIM
from .videomae_v2 import DualMaskPretrainer, decoded_positions
from .vjepa import VJEPA, TargetEncoder, jepa_networks

__all__ = [
    "DualMaskPretrainer",
    "FrozenTeacherTarget",
    "LOSS_TOKENS",
    "MAE",
    "METHOD_REGISTRY",
    "MVD",
    "MaskDistill",
    "MaskFeat",
    "MaskedPretrainer",
    "SimMIM",
    "TeacherEncoder",
    "TeacherFeatureTarget",
    "TargetEncoder",
    "VJEPA",
    "build_model",
    "build_teacher",
    "decoded_positions",
    "jepa_networks",
    "method_name",
    "resample_tokens",
]
