"""Published checkpoints in and out: each foreign format's key mapping to and from
slowmask's state dict, with a report of every tensor used, filled, dropped or created.

formats.py holds the registry of formats (FORMAT_REGISTRY), reading a file or a Hugging
Face directory, detection, `convert_checkpoint` and the `ConversionReport`, and the
native PySlowFast format; one module per family of foreign formats registers its own:
videomae.py (official VideoMAE / VideoMAE V2 .pth), hf_videomae.py (Hugging Face VideoMAE
directories, and writing one), timm_vit.py (timm image ViTs inflated to video),
vjepa_formats.py (V-JEPA's official .pt and transformers' VJEPA2Model folders, mapped by
vjepa.py's functions).
"""

from . import hf_videomae, timm_vit, videomae, vjepa_formats
from .formats import (
    FORMAT_REGISTRY,
    CheckpointFormat,
    ConversionError,
    ConversionReport,
    Converted,
    Source,
    convert_checkpoint,
    convert_source,
    detect_format,
    leave_out_other_classifier,
    model_hints,
    read_source,
    register_format,
    state_for_model,
)
from .hf_videomae import export_hf_directory, hf_videomae_state, write_hf_directory
from .vit import videomae_sine_table

__all__ = [
    "FORMAT_REGISTRY",
    "CheckpointFormat",
    "ConversionError",
    "ConversionReport",
    "Converted",
    "Source",
    "convert_checkpoint",
    "convert_source",
    "detect_format",
    "export_hf_directory",
    "hf_videomae",
    "hf_videomae_state",
    "leave_out_other_classifier",
    "model_hints",
    "read_source",
    "register_format",
    "state_for_model",
    "timm_vit",
    "videomae",
    "vjepa_formats",
    "videomae_sine_table",
    "write_hf_directory",
]
