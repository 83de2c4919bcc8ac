"""checkpoint.load_weights: a tool's strict load of trained weights, told as "loaded
weights" (only training says "resumed"), with advice that fits a tool on a mismatch."""

import logging

import pytest
import torch
from torch import nn

from slowmask.checkpoint import CheckpointError, WeightsMismatchError, load_weights, save_checkpoint


def test_weights_load_and_the_log_says_loaded_not_resumed(tmp_path, caplog):
    source, target = nn.Linear(3, 2), nn.Linear(3, 2)
    path = str(tmp_path / "c.pyth")
    save_checkpoint(path, source, None, 4, "")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="slowmask.checkpoint.pretrained"):
        load_weights(path, target)
    assert torch.equal(target.weight, source.weight) and torch.equal(target.bias, source.bias)
    assert caplog.messages == [f"loaded weights from {path} (epoch 5)"]


def test_a_mismatch_names_the_difference_and_the_tools_fix(tmp_path):
    path = str(tmp_path / "c.pyth")
    save_checkpoint(path, nn.Linear(3, 2), None, 0, "")
    with pytest.raises(WeightsMismatchError) as error:
        load_weights(path, nn.Linear(3, 5))
    message = str(error.value)
    assert "bias: checkpoint [2] vs model [5]" in message
    assert message.endswith("use the config the checkpoint was trained with")
    assert "CHECKPOINT_EPOCH_RESET" not in message


def test_a_folder_is_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match=f"^{tmp_path} is a folder, not a checkpoint: name a checkpoint file"):
        load_weights(str(tmp_path), nn.Linear(3, 2))
