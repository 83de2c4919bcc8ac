"""Foreign checkpoints: reading one (a file, or a Hugging Face directory), finding its
format in FORMAT_REGISTRY, mapping it, and the report of every tensor.

A format is a `CheckpointFormat`: its name, what it reads (for messages), `detect(source)`
(does this file or directory look like mine?) and `mapping(state, config)` -> (state_dict,
config, used): `state_dict` in slowmask's names, `config` the slowmask config keys -> values
of the model it fits, `used` the source keys it consumed. A mapping that meets something it
cannot convert exactly raises ConversionError (or ValueError) naming the cause; nothing is
guessed in silence: what it computes or assumes (a fixed table, a head count the file
does not store) it says in `config["_notes"]`, lines the report prints, and where the
converted model differs from the source in `config["_warnings"]`, lines printed as
warnings.
"""

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple

import torch
from torch import Tensor, nn

from slowmask.utils.registry import Registry

from ..files import CheckpointError, read_torch_file, unwrapped
from ..keys import grouped_keys
from ..sharded import is_sharded_checkpoint, read_sharded_checkpoint

logger = logging.getLogger(__name__)

# Wrappers around a model's state dict in other projects' files: VideoMAE's and timm's
# training scripts save {"model": state}, DeepSpeed and some releases {"module": state}.
STATE_WRAPPERS = ("model", "module", "state_dict")
# A DistributedDataParallel model's key prefix.
DDP_PREFIX = "module."
HF_CONFIG = "config.json"
# The metadata "format" of slowmask's own safetensors checkpoints (tools/export.py --format pyth-safe).
SLOWMASK_SAFETENSORS = "slowmask-checkpoint"
HF_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


class ConversionError(CheckpointError):
    """A checkpoint in a format slowmask knows, that cannot be converted exactly."""


@dataclass
class Source:
    """A foreign checkpoint as read: `state` its tensors (wrappers and DDP prefixes taken
    off), `config` what it says about the model (a Hugging Face config.json, a .pyth's
    `cfg`), `hints` the caller's facts a file may lack (num_frames, image_size,
    num_heads), `container` the wrapper the state came out of ("" for none)."""

    path: str
    state: Dict[str, Tensor]
    config: Dict[str, Any] = field(default_factory=dict)
    hints: Dict[str, Any] = field(default_factory=dict)
    container: str = ""
    is_directory: bool = False


MappingFunction = Callable[[Dict[str, Tensor], Dict[str, Any]], Tuple[Dict[str, Tensor], Dict[str, Any], Set[str]]]


@dataclass(frozen=True)
class CheckpointFormat:
    """A registered format: `name` (FORMAT_REGISTRY's key), `reads` (e.g. "an official
    VideoMAE / VideoMAE V2 .pth"), `detect(source) -> bool`, and `mapping(state, config)`
    as the module docstring says; `mapping` gets `source.config` merged over `source.hints`."""

    name: str
    reads: str
    detect: Callable[[Source], bool]
    mapping: MappingFunction


FORMAT_REGISTRY = Registry("CHECKPOINT_FORMAT", "checkpoint format")
FORMAT_REGISTRY.__doc__ = """Formats of published checkpoints, tried in registration order
on a file or directory: each entry is a CheckpointFormat (see formats.py)."""


def register_format(fmt: CheckpointFormat) -> CheckpointFormat:
    FORMAT_REGISTRY.register(fmt, name=fmt.name)
    return fmt


# Reading.

def read_source(path: str, hints: Optional[Mapping[str, Any]] = None) -> Source:
    """The tensors and model description at `path`: a torch file (any layout), a sharded
    run's checkpoint folder, or a Hugging Face directory (config.json and model.safetensors,
    its shards, or pytorch_model.bin)."""
    hints = dict(hints or {})
    if is_sharded_checkpoint(path):  # a sharded run's checkpoint folder, read whole
        checkpoint = read_sharded_checkpoint(path)
        cfg = checkpoint.get("cfg")
        return Source(path, _tensors(checkpoint["model_state"]), {"cfg": cfg} if cfg else {}, hints, "model_state")
    if os.path.isdir(path):
        return _read_directory(path, hints)
    if path.endswith(".safetensors"):
        metadata = _safetensors_metadata(path)
        if metadata.get("format") == SLOWMASK_SAFETENSORS:  # tools/export.py --format pyth-safe
            cfg = metadata.get("cfg")
            return Source(path, _read_safetensors(path), {"cfg": cfg} if cfg else {}, hints, "model_state")
        return Source(path, _read_safetensors(path), hints=hints)
    raw = read_torch_file(path)
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path} holds a {type(raw).__name__}, not a dict of tensors: not a model checkpoint")
    if "model_state" in raw:  # PySlowFast's (and slowmask's) layout
        cfg = raw.get("cfg")
        return Source(path, _tensors(raw["model_state"]), {"cfg": cfg} if cfg else {}, hints, "model_state")
    for wrapper in STATE_WRAPPERS:
        if isinstance(raw.get(wrapper), dict):
            return Source(path, _tensors(raw[wrapper]), hints=hints, container=wrapper)
    return Source(path, _tensors(_networks_flattened(raw)), hints=hints)


def _networks_flattened(raw: Mapping[str, Any]) -> Dict[str, Any]:
    """A checkpoint of several networks ({"encoder": state, "predictor": state, "opt": ...},
    V-JEPA's) as one state: each entry that is a state dict (tensors only) under its name
    ("encoder.blocks.0..."); the other entries (optimizer, scaler, epoch) are left out."""
    flat: Dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, Mapping) and value and all(isinstance(item, Tensor) for item in value.values()):
            flat.update({f"{key}.{name}": item for name, item in value.items()})
        else:
            flat[key] = value
    return flat


def _tensors(state: Mapping[str, Any]) -> Dict[str, Tensor]:
    """The tensors of a state dict, a DistributedDataParallel `module.` prefix removed."""
    return {
        (key[len(DDP_PREFIX):] if key.startswith(DDP_PREFIX) else key): value
        for key, value in state.items()
        if isinstance(value, Tensor)
    }


def _read_safetensors(path: str) -> Dict[str, Tensor]:
    from safetensors.torch import load_file  # an optional package: only directories need it

    try:
        return load_file(path)
    except Exception as error:  # safetensors' errors have no common base class
        raise CheckpointError(f"{path} is not a readable safetensors file: {error}") from error


def _safetensors_metadata(path: str) -> Dict[str, str]:
    from safetensors import safe_open  # an optional package: only safetensors files need it

    try:
        with safe_open(path, "pt") as f:
            return dict(f.metadata() or {})
    except Exception as error:  # safetensors' errors have no common base class
        raise CheckpointError(f"{path} is not a readable safetensors file: {error}") from error


def _read_directory(path: str, hints: Dict[str, Any]) -> Source:
    config_path = os.path.join(path, HF_CONFIG)
    if not os.path.isfile(config_path):
        raise CheckpointError(
            f"{path} is a folder, not a checkpoint: name a checkpoint file in it (*.pyth), or a Hugging Face model "
            f"folder ({HF_CONFIG} and model.safetensors)"
        )
    try:
        with open(config_path) as f:
            config = json.load(f)
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{config_path} is not readable JSON: {error}") from error
    return Source(path, _directory_weights(path), config, hints, is_directory=True)


def _directory_weights(path: str) -> Dict[str, Tensor]:
    found = [name for name in HF_WEIGHTS if os.path.isfile(os.path.join(path, name))]
    if not found:
        raise CheckpointError(f"{path} holds {HF_CONFIG} but no weights: expected one of {', '.join(HF_WEIGHTS)}")
    name = os.path.join(path, found[0])
    if found[0].endswith(".index.json"):
        with open(name) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        state: Dict[str, Tensor] = {}
        for shard in shards:
            state.update(_read_safetensors(os.path.join(path, shard)))
        return state
    if found[0].endswith(".safetensors"):
        return _read_safetensors(name)
    return _tensors(read_torch_file(name))


# Detecting and converting.

def detect_format(source: Source) -> CheckpointFormat:
    """The first registered format that recognizes `source`.

    Raises:
        CheckpointError: none does; the message lists what is converted.
    """
    for _, fmt in FORMAT_REGISTRY:
        if fmt.detect(source):
            return fmt
    known = "; ".join(f"{fmt.reads} ({name})" for name, fmt in sorted(FORMAT_REGISTRY))
    if source.is_directory:
        what = f"a Hugging Face directory of model_type {source.config.get('model_type')!r}"
    else:
        first = ", ".join(list(source.state)[:4]) or "none"
        what = f"a file of {len(source.state)} tensors (first: {first})"
    raise CheckpointError(f"{source.path} is {what}, in no format slowmask converts; it converts: {known}")


@dataclass
class Converted:
    """A converted checkpoint: the state in slowmask's names, the config keys of the model
    it fits, and the report of every tensor."""

    state: Dict[str, Tensor]
    config: Dict[str, Any]
    report: "ConversionReport"
    cfg_yaml: str = ""  # the whole config of the run that wrote a .pyth, when it kept one


def convert_source(source: Source, fmt: Optional[CheckpointFormat] = None) -> Converted:
    """Map `source` with `fmt` (default: the detected format)."""
    fmt = fmt or detect_format(source)
    try:
        state, config, used = fmt.mapping(source.state, {**source.hints, **source.config})
    except (ConversionError, ValueError) as error:  # a mapping's ValueError: an input it cannot map
        raise ConversionError(f"{source.path} looks like {fmt.reads}, but {error}") from error
    config = dict(config)
    notes, warnings = list(config.pop("_notes", ())), list(config.pop("_warnings", ()))
    report = ConversionReport(source.path, fmt.name, sorted(used), sorted(set(source.state) - set(used)),
                              sorted(state), notes, warnings)
    return Converted(state, config, report, config.pop("_cfg_yaml", ""))


def convert_checkpoint(path: str, hints: Optional[Mapping[str, Any]] = None) -> Converted:
    """Read, detect and map the checkpoint at `path` (see `read_source` for `hints`)."""
    return convert_source(read_source(path, hints))


def state_for_model(path: str, model: nn.Module) -> Tuple[Dict[str, Tensor], str]:
    """(weights, config yaml) at `path` for initializing `model`: a PySlowFast / slowmask
    checkpoint's model_state as it is and the cfg it kept, or a published checkpoint
    converted on the fly, its report logged against `model` (the clip geometry and heads a
    file does not store are taken from the model), and "" for its config."""
    source = read_source(path, model_hints(model))
    if source.container == "model_state":
        return source.state, source.config.get("cfg") or ""
    converted = convert_source(source)
    own = unwrapped(model).state_dict()
    leave_out_other_classifier(converted, own)
    converted.report.compare(list(own)).log()
    return converted.state, ""


# A classifier's names (models/mvit.py's TransformerBasicHead).
CLASSIFIER_PREFIX = "head."


def leave_out_other_classifier(converted: Converted, model_state: Mapping[str, Tensor]) -> List[str]:
    """Leave out of `converted` a classifier of another number of classes than the model's
    (a published fine-tuned model, fine-tuned on other classes), with a warning: the model's
    head keeps its initialization. Returns the names left out."""
    head = [key for key, value in converted.state.items() if key.startswith(CLASSIFIER_PREFIX)
            and key in model_state and value.shape != model_state[key].shape]
    if head:
        logger.warning("%s: its classifier (%s, %d classes) is left out: the model classifies %d; its head is "
                       "trained from its initialization", converted.report.source, ", ".join(head),
                       converted.state[head[0]].shape[0], model_state[head[0]].shape[0])
        for key in head:
            del converted.state[key]
        converted.report.filled = sorted(converted.state)
    return head


def model_hints(model: nn.Module) -> Dict[str, Any]:
    """num_frames, image_size, tubelet and num_heads of a slowmask ViT (its `patch_grid`,
    patch embedding and first block); {} for a model without them."""
    trunk = unwrapped(model)
    grid, proj = getattr(trunk, "patch_grid", None), getattr(getattr(trunk, "patch_embed", None), "proj", None)
    blocks = getattr(trunk, "blocks", None)
    if grid is None or not isinstance(proj, nn.Conv3d) or not blocks:
        return {}
    stride = proj.stride
    return {"num_frames": grid[0] * stride[0], "image_size": grid[1] * stride[1], "tubelet": stride[0],
            "num_heads": blocks[0].attn.num_heads}


@dataclass
class ConversionReport:
    """What a conversion did with every tensor: source tensors `used` and `unused`, target
    tensors `filled`; once compared with a model (`compare`), its tensors the conversion
    left at their initialization (`initialized`) and the filled ones it lacks (`extra`).
    `notes`: what the format computed or assumed (a fixed table, a zero key bias);
    `warnings`: where the converted model differs from the source (another epsilon)."""

    source: str
    format: str
    used: List[str]
    unused: List[str]
    filled: List[str]
    notes: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    initialized: List[str] = field(default_factory=list)
    extra: List[str] = field(default_factory=list)

    def compare(self, model_keys: Sequence[str]) -> "ConversionReport":
        """Note the model's tensors the conversion did not fill, and the filled tensors the
        model does not have."""
        self.initialized = [key for key in model_keys if key not in set(self.filled)]
        self.extra = [key for key in self.filled if key not in set(model_keys)]
        return self

    def log(self, max_lines: int = 12) -> None:
        """One INFO line for the totals and each note, a WARNING for each group of
        unused source tensors, initialized or extra target tensors."""
        total = len(self.used) + len(self.unused)
        logger.info("converted %s (format %s): %d of %d source tensors used, %d slowmask tensors filled",
                    self.source, self.format, len(self.used), total, len(self.filled))
        for note in self.notes:
            logger.info("  %s", note)
        for warning in self.warnings:
            logger.warning("%s: %s", self.source, warning)
        groups = (
            (self.unused, "source tensors left unused"),
            (self.initialized, "model tensors not in the source, left at their initialization"),
            (self.extra, "converted tensors the model does not have, not loaded"),
        )
        for keys, title in groups:
            if keys:
                logger.warning("%s: %d %s:\n%s", self.source, len(keys), title, grouped_keys(keys, max_lines))


# The native format: PySlowFast's (and slowmask's) checkpoints, routed through the same report.

def _is_pyslowfast(source: Source) -> bool:
    return source.container == "model_state"


def pyslowfast_mapping(state: Dict[str, Tensor], config: Dict[str, Any]) -> Tuple[Dict[str, Tensor], Dict[str, Any], Set[str]]:
    """A PySlowFast / slowmask model_state: already in slowmask's names; the config keys
    are those of the run that wrote it (its `cfg`), when it kept one."""
    out: Dict[str, Any] = {"_notes": ["names: PySlowFast's, taken as they are"]}
    if not config.get("cfg"):
        out["_warnings"] = ["the checkpoint keeps no config: give the config of the run that wrote it"]
    else:
        out["_cfg_yaml"] = config["cfg"]
    return dict(state), out, set(state)


register_format(CheckpointFormat(
    name="pyslowfast",
    reads="a PySlowFast / slowmask .pyth (a dict with model_state)",
    detect=_is_pyslowfast,
    mapping=pyslowfast_mapping,
))
