"""Checks of the distributed / precision keys: bad sizes fail at load time, choices only
the step knows fail in the preflight and where the step is built."""

import os

import pytest

from slowmask.config import ConfigError, get_cfg, load_config
from slowmask.engine.preflight import training_choice_problems

DEMO_CFG = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "demo", "MViT_tiny_MaskFeat_PT.yaml")


def test_the_new_keys_have_their_defaults():
    cfg = get_cfg()
    assert (cfg.DIST_RENDEZVOUS_TIMEOUT_S, cfg.DIST_COLLECTIVE_TIMEOUT_S) == (300.0, 1800.0)
    assert (cfg.TRAIN.MIXED_PRECISION_DTYPE, cfg.TRAIN.GRAD_ACCUM_STEPS, cfg.TRAIN.NONFINITE_LOSS) == ("auto", 1, "stop")


def test_choices_of_the_step_are_listed_together():
    cfg = load_config(DEMO_CFG, ["TRAIN.MIXED_PRECISION_DTYPE", "fp8", "TRAIN.NONFINITE_LOSS", "ignore",
                                 "BN.NORM_TYPE", "sub_batchnorm"])
    assert training_choice_problems(cfg) == [
        "TRAIN.MIXED_PRECISION_DTYPE is 'fp8'; supported: 'auto', 'bfloat16', 'float16'",
        "TRAIN.NONFINITE_LOSS is 'ignore'; supported: 'stop', 'skip'",
        "BN.NORM_TYPE is 'sub_batchnorm'; supported: 'batchnorm', 'sync_batchnorm'",
    ]
    assert training_choice_problems(load_config(DEMO_CFG)) == []


@pytest.mark.parametrize("opts,message", [
    (["TRAIN.GRAD_ACCUM_STEPS", "0"], "TRAIN.GRAD_ACCUM_STEPS must be at least 1, got 0"),
    (["DIST_RENDEZVOUS_TIMEOUT_S", "0.0"], "DIST_RENDEZVOUS_TIMEOUT_S must be a positive number of seconds, got 0.0"),
    (["BN.NORM_TYPE", "sync_batchnorm", "NUM_SHARDS", "2"], 'BN.NORM_TYPE "sync_batchnorm" needs GPUs'),
])
def test_bad_values_name_the_key(opts, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(DEMO_CFG, opts)
