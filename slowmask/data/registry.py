from slowmask.utils.registry import Registry

DATASET_REGISTRY = Registry("DATASET")
DATASET_REGISTRY.__doc__ = """Datasets, by the name TRAIN.DATASET / TEST.DATASET gives.

A registered class is built as `cls.from_config(cfg, split)` where split is
"train", "val" or "test", and returns items as dicts (documented on `Kinetics`, data/kinetics.py): `clip`,
`mask` (when masking is on), `label`, `index`, `meta`.
"""
