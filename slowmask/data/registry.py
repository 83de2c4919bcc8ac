"""The dataset registry and its builder: `build_dataset(cfg, split)` finds the class
TRAIN.DATASET / TEST.DATASET names and builds it. The datasets (datasets/) register
themselves here; a user's own dataset registers from a module named in
DATA.CUSTOM_MODULES (imported when the config is loaded)."""

from fvcore.common.config import CfgNode
from torch.utils.data import Dataset

from slowmask.utils.registry import Registry

SPLITS = ("train", "val", "test")

DATASET_REGISTRY = Registry("DATASET", "dataset")
DATASET_REGISTRY.__doc__ = """Datasets, by the name TRAIN.DATASET / TEST.DATASET gives (case ignored).

Every entry is a class built as `cls.from_config(cfg, split=split)` (context: `split`,
"train", "val" or "test"), whose items are dicts (documented on `ClipDataset`,
data/datasets/clip_dataset.py): `clip`, `mask` (when masking is on), `label`, `index`, `meta`.
"""
# The end of the error for an unknown dataset name: how to add one.
REGISTER_ADVICE = (
    ". To add your own, decorate its class with @DATASET_REGISTRY.register() (from slowmask.data import "
    "DATASET_REGISTRY; slowmask.data.ClipDataset is its base class) and name its module or .py file in "
    "DATA.CUSTOM_MODULES"
)


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")


def _registered_name(name: str) -> str:
    """The registered name that `name` matches, case ignored ("kinetics" finds Kinetics);
    `name` itself when none does (the registry then names the ones there are)."""
    matches = [key for key in DATASET_REGISTRY.names() if key.lower() == name.lower()]
    return matches[0] if matches else name


def build_dataset(cfg: CfgNode, split: str) -> Dataset:
    """The dataset TRAIN.DATASET (split "train") or TEST.DATASET ("val", "test") names."""
    check_split(split)
    name, source = (cfg.TRAIN.DATASET, "TRAIN.DATASET") if split == "train" else (cfg.TEST.DATASET, "TEST.DATASET")
    return DATASET_REGISTRY.build(_registered_name(name), cfg, source, advice=REGISTER_ADVICE, split=split)
