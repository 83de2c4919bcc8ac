"""V-JEPA and V-JEPA 2 checkpoints as formats of the registry, mapped by vjepa.py's
functions: the official training `.pt` ({"encoder", "target_encoder", "predictor", ...},
each under `module.backbone.`; read as one state, formats.py) and transformers'
`VJEPA2Model` folders (config.json model_type "vjepa2")."""

from .formats import CheckpointFormat, Source, register_format
from .vjepa import OFFICIAL_PREFIX, from_hf_vjepa2, from_vjepa_checkpoint

# The networks of an official checkpoint, one of which is enough to recognize it.
OFFICIAL_NETWORKS = ("encoder", "target_encoder")


def _is_official_vjepa(source: Source) -> bool:
    starts = tuple(f"{network}.{OFFICIAL_PREFIX}" for network in OFFICIAL_NETWORKS)
    return not source.is_directory and any(key.startswith(starts) for key in source.state)


def _is_hf_vjepa2(source: Source) -> bool:
    return source.is_directory and source.config.get("model_type") == "vjepa2"


register_format(CheckpointFormat(
    name="vjepa",
    reads="an official V-JEPA / V-JEPA 2 training .pt (encoder, target_encoder, predictor)",
    detect=_is_official_vjepa,
    mapping=from_vjepa_checkpoint,
))
register_format(CheckpointFormat(
    name="hf_vjepa2",
    reads="a Hugging Face VJEPA2Model directory",
    detect=_is_hf_vjepa2,
    mapping=from_hf_vjepa2,
))
