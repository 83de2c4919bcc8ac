"""Config checks of the distributed / precision keys: bad values fail at load time."""

import os

import pytest

from slowmask.config import get_cfg, load_config
from slowmask.config import ConfigError

DEMO_CFG = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "demo", "MViT_tiny_MaskFeat_PT.yaml")


def test_the_new_keys_have_their_defaults():
    cfg = get_cfg()
    assert (cfg.DIST_RENDEZVOUS_TIMEOUT_S, cfg.DIST_COLLECTIVE_TIMEOUT_S) == (300.0, 1800.0)
    assert (cfg.TRAIN.MIXED_PRECISION_DTYPE, cfg.TRAIN.GRAD_ACCUM_STEPS, cfg.TRAIN.NONFINITE_LOSS) == ("auto", 1, "stop")


@pytest.mark.parametrize("opts,message", [
    (["TRAIN.MIXED_PRECISION_DTYPE", "fp8"], "TRAIN.MIXED_PRECISION_DTYPE is 'fp8'; supported: 'auto', 'bfloat16', 'float16'"),
    (["TRAIN.NONFINITE_LOSS", "ignore"], "TRAIN.NONFINITE_LOSS is 'ignore'; supported: 'stop', 'skip'"),
    (["BN.NORM_TYPE", "sub_batchnorm"], "BN.NORM_TYPE is 'sub_batchnorm'; supported: 'batchnorm', 'sync_batchnorm'"),
    (["TRAIN.GRAD_ACCUM_STEPS", "0"], "TRAIN.GRAD_ACCUM_STEPS must be at least 1, got 0"),
    (["DIST_RENDEZVOUS_TIMEOUT_S", "0.0"], "DIST_RENDEZVOUS_TIMEOUT_S must be a positive number of seconds, got 0.0"),
    (["BN.NORM_TYPE", "sync_batchnorm", "NUM_SHARDS", "2"], 'BN.NORM_TYPE "sync_batchnorm" needs GPUs'),
])
def test_bad_values_name_the_key(opts, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(DEMO_CFG, opts)
