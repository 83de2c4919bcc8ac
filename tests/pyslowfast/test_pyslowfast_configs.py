"""PySlowFast's MViTv2 and masked-SSL recipes load unchanged and build its networks.

tests/pyslowfast/configs/ holds PySlowFast's recipes (key names and values written out
from its configs/Kinetics, configs/ImageNet and configs/masked_ssl; SSv2_MVITv2_S_16x4.yaml
is its configs/SSv2/MVITv2_S_16x4.yaml as PySlowFast ships it). Each loads both
PySlowFast's way (get_cfg + merge_from_file) and slowmask's validating way
(load_config), and builds exactly the parameter count PySlowFast's own code builds from
the same yaml (which rounds to the published figures). Built on the meta device.
"""

import glob
import os

import pytest
import torch

from slowmask.config import ConfigError, get_cfg, load_config
from slowmask.methods import build_model

CONFIGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")

# yaml -> parameters of PySlowFast's model for it (published, rounded, in the comment).
PYSLOWFAST_PARAMS = {
    "Kinetics_MVITv2_S_16x4.yaml": 34_537_744,  # 34.5 M
    "Kinetics_MVITv2_B_32x3.yaml": 51_230_128,  # 51.2 M
    "ImageNet_MVITv2_T.yaml": 24_173_320,  # 24 M
    "ImageNet_MVITv2_S.yaml": 34_870_216,  # 35 M
    "k400_MVITv2_S_16x4_MaskFeat_PT.yaml": 36_253_356,
    "k400_MVITv2_S_16x4_FT.yaml": 36_475_120,  # 36.5 M
    "k400_MVITv2_L_16x4_MaskFeat_PT.yaml": 217_247_580,
    "k400_MVITv2_L_16x4_FT.yaml": 217_578_064,  # 218 M
    "in1k_VIT_B_MaskFeat_PT.yaml": 85_882_476,
    "in1k_VIT_B_MaskFeat_FT.yaml": 86_567_656,  # 87 M
    "k400_VIT_B_16x4_MAE_PT.yaml": 100_596_736,
    "k400_VIT_B_16x4_FT.yaml": 86_702_224,  # 87 M
    "SSv2_MVITv2_S_16x4.yaml": 34_363_950,  # 34.4 M: MViTv2-S with a 174-class head
}


# yamls that PySlowFast's own assert_and_infer_cfg rejects as well (it asserts that the
# batch divides by NUM_GPUS): the clear error, then the override a user passes.
REJECTED = {
    "k400_VIT_B_16x4_FT.yaml": (r"TRAIN.BATCH_SIZE \(1\) must be a positive multiple", ["TRAIN.BATCH_SIZE", "8"]),
}


def meta_params(cfg) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in build_model(cfg).parameters())


def test_every_shipped_pyslowfast_yaml_has_a_count():
    shipped = sorted(os.path.basename(p) for p in glob.glob(os.path.join(CONFIGS, "*.yaml")))
    assert shipped == sorted(PYSLOWFAST_PARAMS)


@pytest.mark.parametrize("name", sorted(PYSLOWFAST_PARAMS))
def test_pyslowfast_yaml_loads_unchanged_and_builds_its_network(name):
    path = os.path.join(CONFIGS, name)
    cfg = get_cfg()
    cfg.merge_from_file(path)
    assert meta_params(cfg) == PYSLOWFAST_PARAMS[name]
    opts = []
    if name in REJECTED:
        message, opts = REJECTED[name]
        with pytest.raises(ConfigError, match=message):
            load_config(path)
    assert meta_params(load_config(path, opts)) == PYSLOWFAST_PARAMS[name]
